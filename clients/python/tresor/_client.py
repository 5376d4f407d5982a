"""The socket client: HTTP/1.1 + JSON to tresord over its Unix socket (SPEC §6, §8)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import select
import socket as _socket
import threading
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import quote

from ._errors import DaemonUnavailable, Internal, InvalidArgument, TresorError, error_from_body

__all__ = ["Client", "Secrets", "default_socket_path", "API_HEADER", "API_VERSION"]

#: The header carrying the API version, on requests and responses (src/protocol/mod.rs).
API_HEADER = "tresor-api"
#: The API version this client speaks.
API_VERSION = 1

SOCKET_ENV = "TRESOR_SOCKET"
TOKEN_ENV = "TRESOR_TOKEN"

Value = Union[str, bytes]
JSON = Any


def default_socket_path() -> str:
    """The socket the CLI would use: ``$TRESOR_SOCKET``, else ``/run/tresor/tresord.sock`` for
    root, else ``$XDG_RUNTIME_DIR/tresor/tresord.sock`` (when absolute), else
    ``/tmp/tresor-<uid>/tresord.sock`` (src/paths.rs)."""
    env = os.environ.get(SOCKET_ENV)
    if env:
        return env
    uid = os.geteuid()
    if uid == 0:
        return "/run/tresor/tresord.sock"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "tresor", "tresord.sock")
    return f"/tmp/tresor-{uid}/tresord.sock"


def _enc(s: str) -> str:
    """Percent-encodes everything but RFC 3986's unreserved characters (``/`` → ``%2F``)."""
    return quote(s, safe="")


# The page asked for when following a whole listing (GET /v1/secrets?limit=; the daemon serves
# up to 10,000): small pages keep the daemon's memory flat during a full listing.
_LIST_PAGE = 1000


def _query(pairs: Sequence[Tuple[str, Any]]) -> str:
    parts = []
    for k, v in pairs:
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        parts.append(f"{k}={_enc(str(v))}")
    return ("?" + "&".join(parts)) if parts else ""


def _secret_path(name: str, suffix: str = "", query: str = "") -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument("a secret name is a non-empty string", details={"field": "name"})
    return f"/v1/secrets/{_enc(name)}{suffix}{query}"


def _b64(field: str, text: Any) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (ValueError, TypeError):
        # Never quote the text: it is a secret.
        raise Internal(f"the daemon sent {field} that is not valid base64") from None


def _decode_fields(body: Mapping[str, Any]) -> Dict[str, Value]:
    fields: Dict[str, Value] = dict(body.get("fields") or {})
    for k, v in (body.get("fields_base64") or {}).items():
        fields[k] = _b64(f"field {k!r}", v)
    return fields


class _UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client.HTTPConnection`` over an AF_UNIX stream socket."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        super().__init__("tresord", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _SendFailed(Exception):
    """The request could not be written (so the daemon did not act on it)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _ReadFailed(Exception):
    """The request went out but no complete answer came back."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Client:
    """A client of one tresord, over one kept-alive connection.

    >>> from tresor import Client
    >>> client = Client()                          # doctest: +SKIP
    >>> client.secrets.get_value(name="github-pat")["value"]   # doctest: +SKIP

    ``socket`` defaults to the path the CLI uses (:func:`default_socket_path`); ``token`` to
    ``$TRESOR_TOKEN`` (sent as ``Authorization: Bearer``, to act as an agent). Requests on one
    client are serialized (a lock); use one client per thread for concurrency.
    """

    def __init__(
        self,
        socket: Optional[Union[str, "os.PathLike[str]"]] = None,
        token: Optional[str] = None,
        timeout: Optional[float] = 10.0,
    ) -> None:
        self.socket_path: str = os.fspath(socket) if socket is not None else default_socket_path()
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if token is not None and (
            not isinstance(token, str)
            or not token
            or not all(33 <= ord(c) <= 126 for c in token)
        ):
            raise InvalidArgument(
                "a bearer token is non-empty printable ASCII", details={"field": "token"}
            )
        self._token: Optional[str] = token
        self.timeout = timeout
        self._conn: Optional[_UnixHTTPConnection] = None
        self._lock = threading.RLock()
        #: How many connections this client has opened (for tests and benchmarks).
        self.connections_opened = 0
        self.secrets = Secrets(self)

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"Client(socket={self.socket_path!r}, token={token})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the kept-alive connection (the next request opens a new one)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- transport ---------------------------------------------------------------------

    def _unavailable(self, what: str, cause: Optional[BaseException] = None) -> DaemonUnavailable:
        # An OSError's text is the OS's; any other cause (http.client's BadStatusLine quotes
        # what it read) is named by its class only, so that no received byte is echoed.
        if isinstance(cause, OSError):
            reason = f": {cause.strerror or type(cause).__name__}"
        elif cause is not None:
            reason = f": {type(cause).__name__}"
        else:
            reason = ""
        return DaemonUnavailable(
            f"tresord is not available at {self.socket_path} ({what}{reason})",
            socket_path=self.socket_path,
        )

    def _open(self) -> _UnixHTTPConnection:
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            conn.connect()
        except _socket.timeout as e:
            raise self._unavailable("connecting timed out", e) from None
        except OSError as e:
            raise self._unavailable("nothing answers on the socket", e) from None
        self.connections_opened += 1
        return conn

    def _stale(self, conn: _UnixHTTPConnection) -> bool:
        """Whether the daemon closed (or wrote to) an idle kept-alive connection: then it is
        readable before we sent anything."""
        sock = conn.sock
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _exchange(
        self,
        conn: _UnixHTTPConnection,
        method: str,
        path: str,
        body: Optional[bytes],
        headers: Dict[str, str],
    ) -> Tuple[int, Dict[str, str], bytes]:
        try:
            conn.request(method, path, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as e:
            raise _SendFailed(e) from None
        try:
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise _ReadFailed(e) from None
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            conn.close()
        return resp.status, hdrs, data

    def _send(
        self, method: str, path: str, body: Optional[bytes]
    ) -> Tuple[int, Dict[str, str], bytes]:
        headers = {
            API_HEADER: str(API_VERSION),
            "Accept": "application/json",
        }
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        idempotent = method in ("GET", "HEAD")
        with self._lock:
            conn = self._conn
            self._conn = None
            reused = conn is not None and conn.sock is not None and not self._stale(conn)
            if not reused:
                if conn is not None:
                    conn.close()
                conn = self._open()
            assert conn is not None
            try:
                try:
                    result = self._exchange(conn, method, path, body, headers)
                except (_SendFailed, _ReadFailed) as e:
                    conn.close()
                    # A kept-alive connection the daemon closed as we used it: send again on a
                    # new one when nothing was sent, or when sending twice has no effect.
                    retry = reused and (isinstance(e, _SendFailed) or idempotent)
                    if not retry:
                        raise self._failure(e) from None
                    conn = self._open()
                    try:
                        result = self._exchange(conn, method, path, body, headers)
                    except (_SendFailed, _ReadFailed) as e2:
                        conn.close()
                        raise self._failure(e2) from None
            except BaseException:
                conn.close()
                raise
            if conn.sock is not None:
                self._conn = conn
            return result

    def _failure(self, e: Exception) -> TresorError:
        cause = getattr(e, "cause", e)
        if isinstance(cause, _socket.timeout):
            return self._unavailable(f"no answer within {self.timeout} s", None)
        if isinstance(e, _SendFailed):
            return self._unavailable("the request could not be sent", cause)
        return self._unavailable("the connection closed before an answer", cause)

    def request(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        """Sends one API request and returns the decoded JSON answer.

        Raises the :class:`TresorError` subclass of the daemon's error code, or
        :class:`DaemonUnavailable` when nothing answers.
        """
        raw = None if body is None else json.dumps(body).encode("utf-8")
        status, headers, data = self._send(method, path, raw)
        version = headers.get(API_HEADER)
        if version != str(API_VERSION):
            raise Internal(
                f"the daemon speaks API version {version or 'unknown'}, "
                f"this client speaks {API_VERSION}",
                status=status,
            )
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = None
            if 200 <= status < 300:
                raise Internal("the daemon's answer is not JSON", status=status) from None
        if 200 <= status < 300:
            return decoded
        raise error_from_body(status, decoded)

    # -- daemon --------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """``GET /v1/status``: ``{locked, version, api, store_id, secrets, since, principal,
        role}``."""
        return dict(self.request("GET", "/v1/status"))

    def lock(self) -> Dict[str, Any]:
        """``POST /v1/lock`` (owners): the daemon forgets its keys until unlocked."""
        return dict(self.request("POST", "/v1/lock"))

    def unlock(self, passphrase: str) -> Dict[str, Any]:
        """``POST /v1/unlock`` (owners)."""
        return dict(self.request("POST", "/v1/unlock", {"passphrase": passphrase}))

    def backup(self, path: Union[str, "os.PathLike[str]"]) -> int:
        """``GET /v1/backup`` (owners): writes a consistent copy of the sealed store file to a
        new file ``path`` (mode 0600; an existing file is never overwritten: ``FileExistsError``)
        and returns its size. Streamed on a connection of its own; a download cut short
        removes the file and raises :class:`DaemonUnavailable`. Audited as ``export``."""
        target = os.fspath(path)
        headers = {API_HEADER: str(API_VERSION)}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        conn = self._open()
        try:
            try:
                conn.request("GET", "/v1/backup", headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise self._failure(_ReadFailed(e)) from None
            if resp.status != 200:
                data = resp.read()
                try:
                    decoded = json.loads(data) if data else None
                except ValueError:
                    decoded = None
                raise error_from_body(resp.status, decoded)
            expected = int(resp.getheader("Content-Length") or -1)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            written = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    while True:
                        chunk = resp.read(64 * 1024)
                        if not chunk:
                            break
                        out.write(chunk)
                        written += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if expected >= 0 and written != expected:
                    raise self._unavailable(
                        f"the backup ended after {written} of {expected} bytes"
                    )
            except BaseException as e:
                os.unlink(target)
                if isinstance(e, (OSError, http.client.HTTPException)) and not isinstance(
                    e, FileExistsError
                ):
                    raise self._failure(_ReadFailed(e)) from None
                raise
            return written
        finally:
            conn.close()


class Secrets:
    """``client.secrets``: the Kubiya SDK Secrets Service shape over tresor's API."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"Secrets({self._client!r})"

    def list(
        self,
        scope: Optional[str] = None,
        type: Optional[str] = None,  # noqa: A002 - the API's parameter name
        integration: Optional[str] = None,
        q: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Metadata of the secrets the caller may see (never values), sorted by scope and name.
        Asks in pages of 10,000 and follows the ``next`` cursor, so that the daemon never
        builds a whole large listing at once."""
        out: List[Dict[str, Any]] = []
        after: Optional[str] = None
        seen = set()
        while True:
            query = _query(
                [
                    ("scope", scope),
                    ("type", type),
                    ("integration", integration),
                    ("q", q),
                    ("limit", _LIST_PAGE),
                    ("after", after),
                ]
            )
            page = self._client.request("GET", f"/v1/secrets{query}")
            if not isinstance(page, dict) or not isinstance(page.get("secrets"), list):
                raise Internal("the daemon's listing has no `secrets` array")
            out.extend(page["secrets"])
            nxt = page.get("next")
            if not nxt or nxt in seen:
                return out
            seen.add(nxt)
            after = str(nxt)

    def show(self, name: str, scope: Optional[str] = None) -> Dict[str, Any]:
        """Metadata and kept versions of one secret (never its value)."""
        return dict(self._client.request("GET", _secret_path(name, query=_query([("scope", scope)]))))

    def get_value(
        self,
        name: str,
        scope: Optional[str] = None,
        version: Optional[int] = None,
        field: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Reads a value (audited): ``{name, value, type, scope, version, retrieved_at}``, plus
        ``fields`` when the secret has any, and ``stale`` and ``fetched_at`` for a remote secret.
        ``value`` is ``str``, or ``bytes`` when the value is not UTF-8 (the daemon sent
        ``value_base64``). ``name`` may be ``NAME#field``."""
        if field is None and isinstance(name, str) and "#" in name:
            name, field = name.split("#", 1)
        query = _query([("scope", scope), ("version", version), ("field", field)])
        body = self._client.request("GET", _secret_path(name, "/value", query))
        value: Value
        if body.get("value_base64") is not None:
            value = _b64("value_base64", body["value_base64"])
        else:
            value = body.get("value") or ""
        out: Dict[str, Any] = {
            "name": body.get("name"),
            "value": value,
            "type": body.get("type"),
            "scope": body.get("scope"),
            "version": body.get("version"),
            "retrieved_at": body.get("retrieved_at"),
        }
        fields = _decode_fields(body)
        if fields:
            out["fields"] = fields
        # A remote secret (SPEC 11): whether upstream was unreachable and the cache served,
        # and when the value was last fetched.
        for k in ("stale", "fetched_at"):
            if body.get(k) is not None:
                out[k] = body[k]
        return out

    def check(self, required: Union[str, Iterable[str]]) -> Dict[str, List[str]]:
        """Pre-flight (no values read): ``{"present": [...], "missing": [...]}``."""
        names = [required] if isinstance(required, str) else list(required)
        body = self._client.request("POST", "/v1/check", {"required": names})
        return {"present": list(body.get("present", [])), "missing": list(body.get("missing", []))}

    def env(self, names: Union[str, Iterable[Union[str, Mapping[str, Any]]]]) -> Dict[str, Value]:
        """The environment ``tresor run`` would inject: variable → value (``github-pat`` →
        ``GITHUB_PAT``; ``NAME#field=VAR`` or a dict ``{name, scope, field, version, env}`` to
        choose). Binary values come back as ``bytes``. Each read is audited."""
        items = [names] if isinstance(names, str) else [
            n if isinstance(n, str) else dict(n) for n in names
        ]
        body = self._client.request("POST", "/v1/env", {"secrets": items})
        out: Dict[str, Value] = dict(body.get("env") or {})
        for var, b in (body.get("env_base64") or {}).items():
            out[var] = _b64(f"variable {var}", b)
        return out

    def watch(
        self,
        names: Union[str, Iterable[str]],
        since: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """``GET /v1/watch``: ``{generation, secrets: [{name, scope, version}]}`` for
        ``[scope/]name`` items. Without ``since`` it answers at once; with the ``generation`` of
        the last answer it waits until a secret of the store changes or ``timeout`` seconds
        pass (at most 25, and less than the client's own timeout). Compare the versions with
        the ones you hold to tell whether yours changed, then watch again with the new
        ``generation``."""
        items = [names] if isinstance(names, str) else list(names)
        query: List[Tuple[str, Any]] = [("secrets", ",".join(items))]
        if since is not None:
            wait = 25.0 if timeout is None else float(timeout)
            if self._client.timeout is not None:
                wait = min(wait, max(self._client.timeout - 1.0, 0.0))
            query += [("since", int(since)), ("timeout_ms", int(max(wait, 0.0) * 1000))]
        return dict(self._client.request("GET", "/v1/watch" + _query(query)))

    @contextlib.contextmanager
    def use(
        self,
        name: str,
        scope: Optional[str] = None,
        version: Optional[int] = None,
        field: Optional[str] = None,
    ) -> Iterator[Value]:
        """``with client.secrets.use("api-token") as token: ...``: the value for the block; this
        client keeps no reference to it afterwards (Python cannot wipe a ``str``; drop your own
        references too)."""
        got: Optional[Dict[str, Any]] = self.get_value(name, scope=scope, version=version, field=field)
        assert got is not None
        value: Optional[Value] = got.pop("value")
        got.clear()
        got = None
        try:
            assert value is not None
            yield value
        finally:
            value = None

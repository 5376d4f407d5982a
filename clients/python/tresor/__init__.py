"""tresor: a Python client for tresord, the offline secret store's daemon.

Standard library only. The shape of the Kubiya SDK's Secrets Service, so that code written for
it ports by changing the constructor::

    from tresor import Client
    client = Client()                       # finds the socket like the CLI; token: $TRESOR_TOKEN
    for s in client.secrets.list():         # metadata only
        print(s["name"], s["type"])
    token = client.secrets.get_value(name="github-api-token")["value"]
    with client.secrets.use("api-token") as token: ...
"""

from ._client import API_HEADER, API_VERSION, Client, Secrets, default_socket_path
from ._errors import (
    Ambiguous,
    Conflict,
    DaemonUnavailable,
    Integrity,
    Internal,
    InvalidArgument,
    Locked,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    TooManyRequests,
    TresorError,
    Unauthenticated,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "API_HEADER",
    "API_VERSION",
    "Client",
    "Secrets",
    "default_socket_path",
    "TresorError",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "Locked",
    "InvalidArgument",
    "Conflict",
    "Ambiguous",
    "PayloadTooLarge",
    "TooManyRequests",
    "Integrity",
    "Internal",
    "Unavailable",
    "DaemonUnavailable",
    "__version__",
]

"""Writes N secrets of ~150 bytes (secret-00000 ..) through a tresord socket, 16 writers.

    python3 benches/populate.py SOCKET N        (used by benches/scale.sh and ab-reads.sh; the
                                                 same values as ../shared/bench/peer-reads.sh)
"""
import http.client, json, socket, sys, threading
target, n = sys.argv[1], int(sys.argv[2])
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(target)
def work(lo, hi):
    c = Unix("localhost")
    for i in range(lo, hi):
        value = f"pw-{i:08d}-" + "abcdefghijklmnopqrstuvwxyz0123456789" * 3
        c.request("PUT", f"/v1/secrets/secret-{i:05d}", body=json.dumps({"value": value, "type": "token"}))
        r = c.getresponse(); r.read()
        assert r.status == 200, (r.status, r.reason)
k = 16; step = (n + k - 1) // k
ts = [threading.Thread(target=work, args=(j * step, min(n, (j + 1) * step))) for j in range(k)]
[t.start() for t in ts]; [t.join() for t in ts]

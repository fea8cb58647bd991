"""http_demo.py - a small HTTP/1.1 server and clients on rtpy's event loop,
standard library only.

The server is asyncio streams (`asyncio.start_server`) on 127.0.0.1 with an
ephemeral port: HTTP/1.1 with keep-alive (persistent connections unless the
client says `Connection: close`), `Content-Length` request bodies, and a few
routes:

    GET  /            a greeting
    GET  /json?n=K    a JSON document computed from K
    POST /echo        the request body back, with its SHA-256 in a header
    GET  /hash?mb=K   K MiB hashed on the loop's executor (run_in_executor)
    anything else     404

Clients, all checking status, headers and bodies:

 - an asyncio-streams client that sends several requests over ONE keep-alive
   connection (GET, POST with a body, a pipelined pair), then
   `Connection: close`, and sees the server close;
 - 20 concurrent short connections (asyncio.gather);
 - the standard library's `http.client` (keep-alive, several requests on one
   connection) and `urllib.request` (a POST), run in the loop's executor
   (`loop.run_in_executor`): blocking clients on other threads while the
   loop serves them.

    python examples/python/http_demo.py [--loop rtpy|asyncio]

`--loop rtpy` (the default) runs under `rtpy.run`, `--loop asyncio` under
`asyncio.run`. Exit status 0 only if every check passed, within TIME_LIMIT
seconds.
"""

import argparse
import asyncio
import hashlib
import http.client
import json
import sys
import time
import urllib.parse
import urllib.request

HOST = "127.0.0.1"  # loopback only
TIME_LIMIT = 8.0
MAX_BODY = 8 << 20
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}


# -- the server ----------------------------------------------------------------------------------


class BadRequest(Exception):
    pass


async def read_request(reader):
    """One request from `reader`: (method, target, headers, body), or None at
    a clean EOF between requests."""
    line = await reader.readline()
    if not line:
        return None
    try:
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
    except ValueError:
        raise BadRequest(f"bad request line {line!r}") from None
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest(f"unsupported version {version!r}")
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n"):
            break
        if not h:
            raise BadRequest("EOF inside the headers")
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest("chunked request bodies are not supported by this demo")
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise BadRequest("body too large")
    body = await reader.readexactly(length) if length else b""
    return method, target, version, headers, body


def hash_mib(mb):
    """Blocking work for the executor: SHA-256 over `mb` MiB of data."""
    h = hashlib.sha256()
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(mb):
        h.update(block)
    return h.hexdigest()


async def route(method, target, headers, body, stats):
    """(status, extra headers, body) for one request."""
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query)
    if url.path == "/" and method == "GET":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, "hello from asyncio streams\n".encode()
    if url.path == "/json" and method == "GET":
        n = int(query.get("n", ["10"])[0])
        doc = {"n": n, "squares": [i * i for i in range(n)], "loop": type(asyncio.get_running_loop()).__name__}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()
    if url.path == "/echo":
        if method != "POST":
            return 405, {"Allow": "POST"}, b""
        ctype = headers.get("content-type", "application/octet-stream")
        return 200, {"Content-Type": ctype, "X-Body-SHA256": hashlib.sha256(body).hexdigest()}, body
    if url.path == "/hash" and method == "GET":
        mb = int(query.get("mb", ["1"])[0])
        digest = await asyncio.get_running_loop().run_in_executor(None, hash_mib, mb)
        stats["executor_jobs"] += 1
        return 200, {"Content-Type": "text/plain"}, digest.encode()
    return 404, {"Content-Type": "text/plain"}, b"not found\n"


def make_handler(stats):
    async def handle(reader, writer):
        stats["connections"] += 1
        try:
            while True:
                try:
                    req = await read_request(reader)
                except (BadRequest, ValueError) as e:
                    msg = str(e).encode()
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(msg), msg))
                    break
                except asyncio.IncompleteReadError:
                    break
                if req is None:
                    break
                method, target, version, headers, body = req
                stats["requests"] += 1
                status, extra, out = await route(method, target, headers, body, stats)
                conn = headers.get("connection", "").lower()
                keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
                head = [f"HTTP/1.1 {status} {REASONS[status]}", "Server: rtpy-http-demo", f"Content-Length: {len(out)}"]
                head += [f"{k}: {v}" for k, v in extra.items()]
                head.append("Connection: keep-alive" if keep else "Connection: close")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (out if method != "HEAD" else b""))
                await writer.drain()
                if not keep:
                    break
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    return handle


# -- an asyncio-streams client --------------------------------------------------------------------


def request_bytes(method, target, body=b"", headers=None):
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}", "User-Agent: http_demo"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader):
    """(status, headers, body) of one response (Content-Length framed)."""
    status_line = await reader.readline()
    if not status_line:
        raise AssertionError("the server closed the connection instead of answering")
    version, status, _ = status_line.decode("latin-1").split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers = {}
    while True:
        h = await reader.readline()
        if h == b"\r\n":
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status), headers, body


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def keep_alive_client(port):
    """Several requests over one connection, two of them pipelined; then
    Connection: close. Returns the number of responses checked."""
    reader, writer = await asyncio.open_connection(HOST, port)
    n = 0
    try:
        writer.write(request_bytes("GET", "/"))
        st, hd, body = await read_response(reader)
        check(st == 200 and body == b"hello from asyncio streams\n", f"GET /: {st} {body!r}")
        check(hd.get("connection") == "keep-alive", f"GET /: connection {hd.get('connection')!r}")
        n += 1

        big = bytes(i % 251 for i in range(300_000))
        writer.write(request_bytes("POST", "/echo", big, {"Content-Type": "application/x-demo"}))
        st, hd, body = await read_response(reader)
        check(st == 200 and body == big, f"POST /echo: {st}, {len(body)} bytes back")
        check(hd["x-body-sha256"] == hashlib.sha256(big).hexdigest(), "POST /echo: hash header")
        check(hd["content-type"] == "application/x-demo", "POST /echo: content type")
        n += 1

        # Pipelined: two requests written at once, answered in order.
        writer.write(request_bytes("GET", "/json?n=5") + request_bytes("GET", "/missing"))
        st, hd, body = await read_response(reader)
        doc = json.loads(body)
        check(st == 200 and doc["squares"] == [0, 1, 4, 9, 16], f"GET /json: {st} {doc}")
        st, _, _ = await read_response(reader)
        check(st == 404, f"GET /missing: {st}")
        n += 2

        writer.write(request_bytes("GET", "/echo"))  # wrong method
        st, hd, _ = await read_response(reader)
        check(st == 405 and hd.get("allow") == "POST", f"GET /echo: {st}")
        n += 1

        writer.write(request_bytes("GET", "/hash?mb=4", headers={"Connection": "close"}))
        st, hd, body = await read_response(reader)
        check(st == 200 and body.decode() == hash_mib(4), f"GET /hash: {st} {body!r}")
        check(hd.get("connection") == "close", "Connection: close is echoed")
        n += 1
        check(await reader.read() == b"", "the server closes after Connection: close")
    finally:
        writer.close()
        await writer.wait_closed()
    return n


async def short_client(port, i):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        body = f"request {i}".encode() * (i + 1)
        writer.write(request_bytes("POST", "/echo", body, {"Connection": "close"}))
        st, _, got = await read_response(reader)
        check(st == 200 and got == body, f"short client {i}: {st}")
    finally:
        writer.close()
        await writer.wait_closed()
    return 1


# -- standard-library blocking clients, in the executor ------------------------------------------


def http_client_session(port):
    """http.client keeps one connection alive across requests."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    n = 0
    try:
        socks = set()
        for k in range(5):
            conn.request("GET", f"/json?n={k}")
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            check(resp.status == 200 and doc["n"] == k, f"http.client GET /json?n={k}: {resp.status}")
            socks.add(id(conn.sock))
            n += 1
        conn.request("POST", "/echo", body=b"x" * 5000, headers={"Content-Type": "text/plain"})
        resp = conn.getresponse()
        check(resp.status == 200 and resp.read() == b"x" * 5000, "http.client POST /echo")
        socks.add(id(conn.sock))
        n += 1
        check(len(socks) == 1, f"http.client used {len(socks)} connections, expected 1 (keep-alive)")
    finally:
        conn.close()
    return n


def urllib_post(port):
    data = json.dumps({"hello": "world"}).encode()
    req = urllib.request.Request(
        f"http://{HOST}:{port}/echo", data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        check(resp.status == 200, f"urllib POST: {resp.status}")
        check(json.loads(resp.read()) == {"hello": "world"}, "urllib POST: body")
        check(resp.headers["Content-Type"] == "application/json", "urllib POST: content type")
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}/nope", timeout=5)
    except urllib.error.HTTPError as e:
        check(e.code == 404, f"urllib GET /nope: {e.code}")
        e.close()
    else:
        raise AssertionError("urllib GET /nope: expected a 404")
    return 2


# -- main ----------------------------------------------------------------------------------------


async def main():
    loop = asyncio.get_running_loop()
    stats = {"connections": 0, "requests": 0, "executor_jobs": 0}
    server = await asyncio.start_server(make_handler(stats), HOST, 0)
    port = server.sockets[0].getsockname()[1]
    t0 = time.perf_counter()
    try:
        counts = await asyncio.gather(
            keep_alive_client(port),
            *(short_client(port, i) for i in range(20)),
            loop.run_in_executor(None, http_client_session, port),
            loop.run_in_executor(None, urllib_post, port),
        )
    finally:
        server.close()
        await server.wait_closed()
    wall = time.perf_counter() - t0
    checked = sum(counts)
    check(stats["requests"] == checked, f"the server answered {stats['requests']} requests, clients checked {checked}")
    check(stats["executor_jobs"] == 1, "the /hash request ran on the executor")
    return type(loop), stats, checked, wall


def run(loop_name, coro):
    """Runs `coro` on the chosen loop: rtpy.run or asyncio.run."""
    if loop_name == "asyncio":
        return asyncio.run(coro)
    import rtpy

    return rtpy.run(coro)


def cli():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", choices=("rtpy", "asyncio"), default="rtpy")
    args = ap.parse_args()
    try:
        loop_type, stats, checked, wall = run(args.loop, asyncio.wait_for(main(), TIME_LIMIT))
    except Exception as e:  # noqa: BLE001 - the demo reports and fails
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"loop: {loop_type.__module__}.{loop_type.__qualname__}")
    print(
        f"{checked} responses checked over {stats['connections']} connections "
        f"(keep-alive, pipelining, POST bodies, http.client, urllib) in {wall * 1e3:.1f} ms; "
        f"{stats['executor_jobs']} executor job"
    )
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(cli())

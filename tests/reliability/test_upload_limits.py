"""Uploads are bounded before they are buffered: by Content-Length, by counted bytes, by pixels."""

import http.client
import json
import select
import socket
import struct
import time
import tracemalloc
import zlib

import pytest
import requests

from app.core.errors import InvalidImage
from app.services.image_processor import decode_image
from tests.reliability.helpers import assert_envelope, record_figure

LIMIT_MB = "0.05"  # 52 428 bytes of image, plus 64 KiB for the form fields


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


@pytest.fixture
def small_limit_server(start_server):
    return start_server(MAX_IMAGE_SIZE_MB=LIMIT_MB)


def test_declared_oversize_body_is_refused_before_it_is_sent(small_limit_server):
    sock = _connect(small_limit_server.url)
    started = time.perf_counter()
    # Declares 1 GiB and sends none of it: the answer must not wait for the body.
    sock.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    status, body = _read_response(sock)
    ms = (time.perf_counter() - started) * 1000
    sock.close()
    assert status == 400 and b'"INVALID_IMAGE"' in body and b'"too_large"' in body
    assert b'"max_bytes":52428' in body
    record_figure("declared_1GiB_refused_ms", round(ms, 1))


def test_chunked_upload_is_cut_off_once_counted_bytes_pass_the_limit(small_limit_server):
    sock = _connect(small_limit_server.url)
    sock.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    preamble = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    sent, chunk = 0, preamble + b"\0" * (64 * 1024)
    status = None
    try:
        for _ in range(1000):  # would be 64 MiB; the server stops it long before
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there: stop sending, like a careful client
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            chunk = b"\0" * (64 * 1024)
    except OSError:
        pass  # the server answered and closed the connection
    status, body = _read_response(sock)
    sock.close()
    assert status == 400 and b'"too_large"' in body
    assert sent < 8 * 1024 * 1024
    record_figure("chunked_upload_cut_after_bytes_sent", sent)


def test_upload_just_over_the_image_limit_is_refused_in_the_envelope(small_limit_server):
    response = requests.post(small_limit_server.url + "/segment",
                             files={"image": ("a.png", b"\x89PNG" + b"\0" * 60_000)}, timeout=30)
    body = assert_envelope(response, 400, "INVALID_IMAGE")
    assert body["details"] == {"reason": "too_large", "max_bytes": 52_428}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but carries one tiny IDAT."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def test_decompression_bomb_header_is_refused_fast_without_allocating():
    bomb = _png_header_only(100_000, 100_000)  # 10^10 pixels, 30 GB as RGB
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(InvalidImage) as refused:
        decode_image(bomb, max_pixels=40_000_000)
    ms = (time.perf_counter() - started) * 1000
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert refused.value.details["reason"] == "too_many_pixels"
    assert peak < 1024 * 1024 and ms < 100
    record_figure("bomb_png_100000x100000", {"refused_ms": round(ms, 2), "peak_alloc_bytes": peak,
                                             "file_bytes": len(bomb)})


def test_decompression_bomb_upload_returns_too_many_pixels(server):
    response = requests.post(server.url + "/segment",
                             files={"image": ("bomb.png", _png_header_only(100_000, 100_000))},
                             timeout=30)
    body = assert_envelope(response, 400, "INVALID_IMAGE")
    assert body["details"]["reason"] == "too_many_pixels"


def _multipart(image: bytes) -> tuple[bytes, str]:
    boundary = "lingering-close-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("image_bytes", [2_400_000, 6_700_000])
def test_a_client_that_sends_the_whole_body_first_always_reads_the_answer(start_server, image_bytes):
    """http.client sends everything before reading (no Expect: 100-continue); the
    server must keep reading after refusing, or the client sees a connection reset."""
    server = start_server(MAX_IMAGE_SIZE_MB="1")
    host, port = server.url.removeprefix("http://").split(":")
    body, content_type = _multipart(b"\x89PNG" + b"\0" * image_bytes)
    statuses = []
    for _ in range(20):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/segment", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        statuses.append((response.status, json.loads(response.read())["details"]["reason"]))
        conn.close()
    assert statuses == [(400, "too_large")] * 20


def test_a_chunked_body_sent_whole_also_reads_the_answer(start_server):
    server = start_server(MAX_IMAGE_SIZE_MB="1")
    host, port = server.url.removeprefix("http://").split(":")
    body, content_type = _multipart(b"\x89PNG" + b"\0" * 3_000_000)
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    for _ in range(5):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/segment", body=iter(chunks), encode_chunked=True,
                     headers={"Content-Type": content_type})
        response = conn.getresponse()
        assert response.status == 400 and b'"too_large"' in response.read()
        conn.close()


def test_a_client_that_never_finishes_sending_is_answered_and_cut_off(small_limit_server):
    sock = _connect(small_limit_server.url)
    sock.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" + b"\0" * 1_000_000)
    status, body = _read_response(sock)  # the answer comes at once, the body still owed
    assert status == 400 and b'"too_large"' in body
    started = time.monotonic()
    sock.settimeout(15)
    while sock.recv(65536):  # then the server stops waiting and closes
        pass
    closed_after_s = time.monotonic() - started
    sock.close()
    assert closed_after_s < 10
    record_figure("stalled_upload_closed_after_s", round(closed_after_s, 2))

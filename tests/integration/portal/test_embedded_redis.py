import socket

import redis

from portal.embedded_redis import embedded_redis


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_redis_serves_on_its_port_and_stops_afterwards(tmp_path):
    with embedded_redis(data_dir=tmp_path) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        client = redis.Redis.from_url(url)
        client.set("nestlab", "embedded")
        assert client.get("nestlab") == b"embedded"
        client.close()
    assert not _listening(port)


def test_embedded_redis_refuses_a_taken_port_in_words(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            with embedded_redis(data_dir=tmp_path, port=port):
                raise AssertionError("should not start")
        except RuntimeError as error:
            assert f"Port {port} is taken" in str(error)

import stat

from cryptography.fernet import Fernet

from portal.secrets import read_or_create_local_secret


def test_secret_is_created_once_then_reused(tmp_path):
    first = read_or_create_local_secret(tmp_path, "secret-key")
    assert len(first) >= 50
    assert read_or_create_local_secret(tmp_path, "secret-key") == first


def test_secret_file_is_readable_by_its_owner_only(tmp_path):
    read_or_create_local_secret(tmp_path / "var", "secret-key")
    mode = stat.S_IMODE((tmp_path / "var" / "secret-key").stat().st_mode)
    assert mode == 0o600


def test_fernet_secret_is_a_usable_key(tmp_path):
    key = read_or_create_local_secret(tmp_path, "encryption-key", fernet=True)
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"

import stat

import pytest
from cryptography.fernet import Fernet

from storage.secretbox import KEY_FILE, PREFIX, SecretBox, SecretsError, local_key

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRETS = {"signing_secrets": ["whsec_a", "whsec_b"], "url": "https://hooks/T/B/token", "x": ""}


def test_values_are_sealed_and_open_again():
    box = SecretBox([OLD])
    sealed = box.seal(SECRETS)
    assert sealed["x"] == ""  # nothing secret: kept, so unset fields stay visible
    for name in ("signing_secrets", "url"):
        assert sealed[name].startswith(PREFIX)
        assert "whsec" not in sealed[name]
        assert "token" not in sealed[name]
    assert box.open(sealed) == SECRETS
    assert box.seal(SECRETS)["url"] != sealed["url"]  # a fresh IV every time


def test_plaintext_values_pass_and_reseal_seals_them():
    box = SecretBox([OLD])
    assert box.open(SECRETS) == SECRETS  # rows written before encryption
    resealed = box.reseal(SECRETS)
    assert resealed["url"].startswith(PREFIX)
    assert box.open(resealed) == SECRETS


def test_rotation_first_key_encrypts_every_key_decrypts():
    old_sealed = SecretBox([OLD]).seal(SECRETS)
    rotated = SecretBox.from_text(f" {NEW} , {OLD} ")
    assert rotated.open(old_sealed) == SECRETS
    resealed = rotated.reseal(old_sealed)
    assert SecretBox([NEW]).open(resealed) == SECRETS
    with pytest.raises(SecretsError, match="signing_secrets"):
        SecretBox([OLD]).open(resealed)


@pytest.mark.parametrize("text", ["", " , ", "not-a-key", OLD[:-4]])
def test_malformed_keys_are_refused(text):
    with pytest.raises(SecretsError):
        SecretBox.from_text(text)


def test_the_local_key_is_made_once_and_private(tmp_path):
    key = local_key(tmp_path / "data")
    assert local_key(tmp_path / "data") == key
    assert stat.S_IMODE((tmp_path / "data" / KEY_FILE).stat().st_mode) == 0o600
    SecretBox([key])  # a valid Fernet key

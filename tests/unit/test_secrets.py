from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from astra.adapters.secrets import AesGcmCipher, HmacHasher, InstanceCipher
from astra.ports.secrets import DecryptionError

MASTER = "master-key-for-tests-0123456789abcdef"
BOT_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"


@pytest.fixture(scope="module")
def cipher() -> AesGcmCipher:
    return AesGcmCipher(MASTER)


@pytest.fixture(scope="module")
def hasher() -> HmacHasher:
    return HmacHasher(MASTER)


def _flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(text[index]) + 1) % len(alphabet)]
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("plaintext", ["", BOT_TOKEN, "chave-ção-✓-🔑", "x" * 10_000])
def test_round_trip(cipher: AesGcmCipher, plaintext: str) -> None:
    encrypted = cipher.encrypt(plaintext, context="instance:loja-1")
    assert encrypted.startswith("v1.")
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+", encrypted)
    assert plaintext == "" or plaintext not in encrypted
    assert cipher.decrypt(encrypted, context="instance:loja-1") == plaintext


def test_encryption_is_randomised(cipher: AesGcmCipher) -> None:
    first, second = cipher.encrypt(BOT_TOKEN), cipher.encrypt(BOT_TOKEN)
    assert first != second
    assert cipher.decrypt(first) == cipher.decrypt(second) == BOT_TOKEN


def test_layout_is_nonce_ciphertext_tag(cipher: AesGcmCipher) -> None:
    raw = base64.urlsafe_b64decode(cipher.encrypt("abc")[3:] + "==")
    assert len(raw) == 12 + 3 + 16


def test_same_master_key_decrypts_across_instances_of_the_cipher(cipher: AesGcmCipher) -> None:
    encrypted = cipher.encrypt(BOT_TOKEN, context="c")
    assert AesGcmCipher(MASTER).decrypt(encrypted, context="c") == BOT_TOKEN


def test_wrong_context_fails(cipher: AesGcmCipher) -> None:
    encrypted = cipher.encrypt(BOT_TOKEN, context="instance:loja-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(encrypted, context="instance:loja-2")
    with pytest.raises(DecryptionError):
        cipher.decrypt(encrypted)


def test_wrong_master_key_fails(cipher: AesGcmCipher) -> None:
    encrypted = cipher.encrypt(BOT_TOKEN)
    with pytest.raises(DecryptionError):
        AesGcmCipher(MASTER + "x").decrypt(encrypted)


def test_every_tampered_character_fails(cipher: AesGcmCipher) -> None:
    encrypted = cipher.encrypt("secret-key-ABCD", context="c")
    for index in range(3, len(encrypted)):
        with pytest.raises(DecryptionError):
            cipher.decrypt(_flip(encrypted, index), context="c")


@pytest.mark.parametrize(
    "garbage",
    ["", "v1.", "v2.AAAA", "plain text", "v1.!!!!", "v1.AAAA", "v1." + "A" * 40, "v1.é", "v1.AA=A"],
)
def test_malformed_ciphertext_fails(cipher: AesGcmCipher, garbage: str) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt(garbage)


def test_truncated_and_extended_ciphertext_fails(cipher: AesGcmCipher) -> None:
    encrypted = cipher.encrypt(BOT_TOKEN)
    for broken in (encrypted[:-1], encrypted[:-4], encrypted + "A", encrypted + "AAAA"):
        with pytest.raises(DecryptionError):
            cipher.decrypt(broken)


def test_instance_cipher_has_its_own_key(cipher: AesGcmCipher) -> None:
    loja1 = cipher.for_instance("loja-1")
    loja2 = cipher.for_instance("loja-2")

    master_text = cipher.encrypt(BOT_TOKEN, context="loja-1")
    with pytest.raises(DecryptionError):
        loja1.decrypt(master_text, context="loja-1")

    instance_text = loja1.encrypt(BOT_TOKEN, context="loja-1")
    assert loja1.decrypt(instance_text, context="loja-1") == BOT_TOKEN
    assert cipher.for_instance("loja-1").decrypt(instance_text, context="loja-1") == BOT_TOKEN
    with pytest.raises(DecryptionError):
        loja2.decrypt(instance_text, context="loja-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(instance_text, context="loja-1")

    assert cipher.instance_key("loja-1") != cipher.instance_key("loja-2")
    assert cipher.instance_key("loja-1") == AesGcmCipher(MASTER).instance_key("loja-1")
    assert cipher.instance_key("loja-1") != AesGcmCipher(MASTER + "x").instance_key("loja-1")


def test_instance_cipher_rebuilt_from_its_exported_key(cipher: AesGcmCipher) -> None:
    # What a tenant runtime does: it gets the key text, never the master key.
    key = cipher.instance_key("loja-1")
    assert MASTER not in key
    runtime_cipher = InstanceCipher(key, "loja-1")
    encrypted = cipher.for_instance("loja-1").encrypt("stock-key-1", context="p1")
    assert runtime_cipher.decrypt(encrypted, context="p1") == "stock-key-1"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "short",
        "A" * 42 + "!",
        base64.urlsafe_b64encode(b"x" * 16).decode().rstrip("="),
        base64.urlsafe_b64encode(b"x" * 32).decode(),  # padded: not the exported form
    ],
)
def test_instance_cipher_rejects_bad_keys(key: str) -> None:
    with pytest.raises(ValueError):
        InstanceCipher(key, "loja-1")


def test_instance_cipher_cannot_derive_further(cipher: AesGcmCipher) -> None:
    with pytest.raises(PermissionError):
        cipher.for_instance("loja-1").for_instance("loja-2")


def test_reprs_do_not_show_keys(cipher: AesGcmCipher, hasher: HmacHasher) -> None:
    instance = cipher.for_instance("loja-1")
    for obj in (cipher, hasher, instance):
        assert MASTER not in repr(obj)
    assert cipher.instance_key("loja-1") not in repr(instance)


def test_empty_master_key_is_refused() -> None:
    with pytest.raises(ValueError):
        AesGcmCipher("")
    with pytest.raises(ValueError):
        HmacHasher("")


def test_fingerprint_is_deterministic_and_keyed(hasher: HmacHasher) -> None:
    fp = hasher.fingerprint(BOT_TOKEN)
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert fp == hasher.fingerprint(BOT_TOKEN) == HmacHasher(MASTER).fingerprint(BOT_TOKEN)
    assert fp != hasher.fingerprint(BOT_TOKEN + "x")
    assert fp != HmacHasher(MASTER + "x").fingerprint(BOT_TOKEN)
    assert BOT_TOKEN not in fp


def test_fingerprint_is_not_a_plain_or_master_keyed_hash(hasher: HmacHasher) -> None:
    # A plain SHA-256 of a stock key can be brute-forced from a leaked file; the HKDF-derived key
    # also keeps fingerprints unrelated to anything else computed from the master key.
    value = "ABCD-1234"
    assert hasher.fingerprint(value) != hashlib.sha256(value.encode()).hexdigest()
    assert (
        hasher.fingerprint(value)
        != hmac.new(MASTER.encode(), value.encode(), hashlib.sha256).hexdigest()
    )


def test_password_hash_and_verify(hasher: HmacHasher) -> None:
    hashed = hasher.hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "correct horse" not in hashed
    assert hasher.verify_password("correct horse battery staple", hashed) is True
    assert hasher.verify_password("correct horse battery stapl", hashed) is False
    assert hasher.verify_password("", hashed) is False
    assert hasher.hash_password("correct horse battery staple") != hashed


def test_password_hash_does_not_depend_on_the_master_key(hasher: HmacHasher) -> None:
    # Rotating ASTRA_MASTER_KEY must not lock every user out.
    hashed = hasher.hash_password("senha-segura")
    assert HmacHasher("another-master-key-entirely").verify_password("senha-segura", hashed)


def test_unicode_password(hasher: HmacHasher) -> None:
    hashed = hasher.hash_password("sênha-çom-acentos-🔒")
    assert hasher.verify_password("sênha-çom-acentos-🔒", hashed)
    assert not hasher.verify_password("senha-com-acentos-🔒", hashed)


def test_verify_uses_the_parameters_stored_in_the_hash(hasher: HmacHasher) -> None:
    cheap = HmacHasher(MASTER, memory_kib=8 * 1024, iterations=1)
    hashed = cheap.hash_password("pw-123456")
    assert "$m=8192,t=1,p=1$" in hashed
    assert hasher.verify_password("pw-123456", hashed)
    assert hasher.needs_rehash(hashed)
    assert not hasher.needs_rehash(hasher.hash_password("pw-123456"))


def test_verifies_a_hash_made_by_another_argon2_implementation(hasher: HmacHasher) -> None:
    # A published PHC test vector (password "pass", salt "aaaaaaaa"): hashes imported from other
    # tools verify here.
    phc = "$argon2id$v=19$m=8,t=1,p=1$YWFhYWFhYWE$tPAla38/iYe0rtvQKVaPv04WYar67QEGlc4fhxU185s"
    assert hasher.verify_password("pass", phc) is True
    assert hasher.verify_password("Pass", phc) is False


def test_hashes_are_standard_phc_strings(hasher: HmacHasher) -> None:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    if not hasattr(Argon2id, "verify_phc_encoded"):
        pytest.skip("cryptography too old for PHC helpers")
    Argon2id.verify_phc_encoded(b"pw-interop", hasher.hash_password("pw-interop"))
    theirs = Argon2id(
        salt=b"0123456789abcdef", length=32, iterations=2, lanes=1, memory_cost=19456
    ).derive_phc_encoded(b"pw-interop")
    assert hasher.verify_password("pw-interop", theirs)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not a hash",
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=19456,t=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a",
        "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA$extra",
    ],
)
def test_malformed_hash_is_false_not_an_error(hasher: HmacHasher, bad: str) -> None:
    assert hasher.verify_password("password", bad) is False


def test_tampered_hash_is_false(hasher: HmacHasher) -> None:
    hashed = hasher.hash_password("pw-abcdef")
    head, digest = hashed.rsplit("$", 1)
    other = "A" if digest[0] != "A" else "B"
    assert hasher.verify_password("pw-abcdef", f"{head}${other}{digest[1:]}") is False
    assert hasher.verify_password("pw-abcdef", hashed.replace("t=2", "t=3")) is False

"""TokenCipher and SecretHasher on the `cryptography` package: AES-256-GCM, HMAC-SHA256, Argon2id.

Every key is derived from the one master key with HKDF under its own label, so the cipher key, the
fingerprint key and each instance's key are independent: leaking one reveals none of the others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from astra.ports.secrets import DecryptionError

CIPHER_INFO = b"astra/cipher/v1"
INSTANCE_CIPHER_INFO = b"astra/cipher/v1/instance/"
FINGERPRINT_INFO = b"astra/fingerprint/v1"

_PREFIX = "v1."
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32


def derive_key(master_key: str, info: bytes) -> bytes:
    if not master_key:
        raise ValueError("the master key is empty")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info)
    return hkdf.derive(master_key.encode("utf-8"))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict inverse of `_b64encode`: a non-canonical spelling of the same bytes is rejected, so
    no two texts decrypt to the same record."""
    raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64encode(raw) != text:
        raise ValueError("non-canonical base64")
    return raw


class AesGcmCipher:
    """The platform's cipher. The ciphertext is `v1.` + base64url(nonce ‖ ciphertext ‖ tag)."""

    def __init__(self, master_key: str) -> None:
        self._master_key = master_key
        self._aead = AESGCM(derive_key(master_key, CIPHER_INFO))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key>)"

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        return _encrypt(self._aead, plaintext, context)

    def decrypt(self, ciphertext: str, *, context: str = "") -> str:
        return _decrypt(self._aead, ciphertext, context)

    def for_instance(self, instance_id: str) -> InstanceCipher:
        return InstanceCipher(self.instance_key(instance_id), instance_id)

    def instance_key(self, instance_id: str) -> str:
        """The key `for_instance` uses, as text: what a tenant runtime gets in its environment."""
        if not instance_id:
            raise ValueError("instance_id is empty")
        info = INSTANCE_CIPHER_INFO + instance_id.encode("utf-8")
        return _b64encode(derive_key(self._master_key, info))


class InstanceCipher:
    """A cipher holding one instance's derived key, and nothing that leads back to the master."""

    def __init__(self, key: str, instance_id: str) -> None:
        try:
            raw = _b64decode(key)
        except (ValueError, binascii.Error):
            raise ValueError("the instance key is not valid base64url") from None
        if len(raw) != _KEY_BYTES:
            raise ValueError(f"the instance key must be {_KEY_BYTES} bytes")
        self.instance_id = instance_id
        self._aead = AESGCM(raw)
        # A separate key for fingerprints, so the HMAC never reuses the encryption key.
        self._fingerprint_key = hmac.new(raw, FINGERPRINT_INFO, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.instance_id!r}, <key>)"

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        return _encrypt(self._aead, plaintext, context)

    def decrypt(self, ciphertext: str, *, context: str = "") -> str:
        return _decrypt(self._aead, ciphertext, context)

    def fingerprint(self, value: str) -> str:
        """Keyed hash of a value (a stock key) to find duplicates without decrypting anything."""
        return hmac.new(self._fingerprint_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def for_instance(self, instance_id: str) -> InstanceCipher:
        # A tenant deriving keys for other instances is exactly what per-instance keys prevent.
        raise PermissionError("an instance cipher cannot derive keys for other instances")


def _encrypt(aead: AESGCM, plaintext: str, context: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return _PREFIX + _b64encode(nonce + sealed)


def _decrypt(aead: AESGCM, ciphertext: str, context: str) -> str:
    try:
        if not ciphertext.startswith(_PREFIX):
            raise ValueError("unknown ciphertext version")
        raw = _b64decode(ciphertext[len(_PREFIX) :])
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise ValueError("ciphertext too short")
        plain = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
        return plain.decode("utf-8")
    except (InvalidTag, ValueError, TypeError, AttributeError, binascii.Error):
        # One message for every cause: telling them apart would help whoever probes the cipher.
        raise DecryptionError("cannot decrypt: wrong key or context, or altered text") from None


# OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane (~20 ms here).
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_ITERATIONS = 2
ARGON2_LANES = 1
_ARGON2_SALT_BYTES = 16
_ARGON2_HASH_BYTES = 32
# Bounds on what a stored hash may ask for, so an edited record cannot make a login allocate
# gigabytes or spin for minutes.
_ARGON2_MAX_MEMORY_KIB = 1024 * 1024
_ARGON2_MAX_ITERATIONS = 16
_ARGON2_MAX_LANES = 16

_PHC = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,10}),p=(?P<p>[0-9]{1,10})"
    r"\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<hash>[A-Za-z0-9+/]+)"
)


def _phc_b64encode(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def _phc_b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class HmacHasher:
    """Keyed fingerprints (HMAC-SHA256) and Argon2id password hashes in PHC string format."""

    def __init__(
        self,
        master_key: str,
        *,
        memory_kib: int = ARGON2_MEMORY_KIB,
        iterations: int = ARGON2_ITERATIONS,
        lanes: int = ARGON2_LANES,
    ) -> None:
        self._fingerprint_key = derive_key(master_key, FINGERPRINT_INFO)
        self._memory_kib = memory_kib
        self._iterations = iterations
        self._lanes = lanes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key>)"

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._fingerprint_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def hash_password(self, password: str) -> str:
        salt = os.urandom(_ARGON2_SALT_BYTES)
        digest = _argon2(
            password, salt, self._memory_kib, self._iterations, self._lanes, _ARGON2_HASH_BYTES
        )
        params = f"m={self._memory_kib},t={self._iterations},p={self._lanes}"
        return f"$argon2id$v=19${params}${_phc_b64encode(salt)}${_phc_b64encode(digest)}"

    def verify_password(self, password: str, hashed: str) -> bool:
        parsed = _parse_phc(hashed)
        if parsed is None:
            return False
        memory, iterations, lanes, salt, expected = parsed
        actual = _argon2(password, salt, memory, iterations, lanes, len(expected))
        return hmac.compare_digest(actual, expected)

    def needs_rehash(self, hashed: str) -> bool:
        """True when `hashed` used other parameters than this hasher's: rehash it at login."""
        parsed = _parse_phc(hashed)
        if parsed is None:
            return True
        memory, iterations, lanes, _, _ = parsed
        return (memory, iterations, lanes) != (self._memory_kib, self._iterations, self._lanes)


def _argon2(password: str, salt: bytes, memory: int, iterations: int, lanes: int, n: int) -> bytes:
    kdf = Argon2id(salt=salt, length=n, iterations=iterations, lanes=lanes, memory_cost=memory)
    return kdf.derive(password.encode("utf-8"))


def _parse_phc(hashed: object) -> tuple[int, int, int, bytes, bytes] | None:
    if not isinstance(hashed, str):
        return None
    match = _PHC.fullmatch(hashed)
    if match is None:
        return None
    memory, iterations, lanes = int(match["m"]), int(match["t"]), int(match["p"])
    if not (
        1 <= lanes <= _ARGON2_MAX_LANES
        and 1 <= iterations <= _ARGON2_MAX_ITERATIONS
        and 8 * lanes <= memory <= _ARGON2_MAX_MEMORY_KIB
    ):
        return None
    try:
        salt, digest = _phc_b64decode(match["salt"]), _phc_b64decode(match["hash"])
    except (ValueError, binascii.Error):
        return None
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        return None
    return memory, iterations, lanes, salt, digest

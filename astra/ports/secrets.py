"""Secrets at rest: a reversible cipher (bot tokens, stock keys) and a one-way hasher.

Two separate interfaces because they answer different questions: the cipher lets the platform use a
bot token again, the hasher lets it tell whether two tokens are the same one without decrypting them
and to verify a password without storing it.
"""

from __future__ import annotations

from typing import Protocol


class DecryptionError(Exception):
    """The ciphertext was not made with this key, or was altered."""


class TokenCipher(Protocol):
    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Authenticated encryption; `context` is bound to the ciphertext (e.g. an instance id) so a
        value copied to another record does not decrypt there. Returns ASCII text safe for JSON."""
        ...

    def decrypt(self, ciphertext: str, *, context: str = "") -> str:
        """Inverse of `encrypt`; raises DecryptionError on a wrong key, context or altered text."""
        ...

    def instance_key(self, instance_id: str) -> str:
        """The derived key of one instance's vault, as text: what its runtime receives in
        place of the master key."""
        ...

    def for_instance(self, instance_id: str) -> InstanceVault:
        """A cipher with a key derived for one instance: what a tenant runtime receives instead of
        the platform's master key."""
        ...


class InstanceVault(Protocol):
    """One instance's secrets at rest (its stock keys): what its own runtime can hold."""

    instance_id: str

    def encrypt(self, plaintext: str, *, context: str = "") -> str: ...

    def decrypt(self, ciphertext: str, *, context: str = "") -> str: ...

    def fingerprint(self, value: str) -> str:
        """Keyed hash, to find duplicate keys without decrypting them."""
        ...


class SecretHasher(Protocol):
    def fingerprint(self, value: str) -> str:
        """Deterministic keyed hash (HMAC) to recognise the same secret twice (duplicate bot tokens,
        duplicate stock keys) without keeping it in clear."""
        ...

    def hash_password(self, password: str) -> str:
        """Slow salted hash for passwords."""
        ...

    def verify_password(self, password: str, hashed: str) -> bool:
        """Constant-time check of a password against `hash_password`'s output."""
        ...

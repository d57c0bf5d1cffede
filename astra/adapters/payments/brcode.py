"""PIX "copia e cola" payloads (BR Code, EMV QRCPS-MPM) and their QR images, for the sandbox.

The layout follows the Banco Central do Brasil's BR Code manual: ID-length-value fields, the
PIX merchant account template (GUI br.gov.bcb.pix + key), amount, country, merchant name and
city, a transaction id, and a CRC16-CCITT (poly 0x1021, init 0xFFFF) over everything before it.
"""

from __future__ import annotations

import base64
import io
import re
import unicodedata

import qrcode
from qrcode.image.pure import PyPNGImage


def _field(tag: str, value: str) -> str:
    if len(value) > 99:
        raise ValueError(f"BR Code field {tag} longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def _ascii(text: str, limit: int) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9 .-]", "", plain).upper()[:limit] or "ASTRA"


def crc16(payload: str) -> str:
    crc = 0xFFFF
    for byte in payload.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def build_brcode(*, pix_key: str, amount_cents: int, merchant: str, city: str, txid: str) -> str:
    account = _field("00", "br.gov.bcb.pix") + _field("01", pix_key)
    txid = re.sub(r"[^A-Za-z0-9]", "", txid)[:25] or "***"
    payload = (
        _field("00", "01")
        + _field("26", account)
        + _field("52", "0000")
        + _field("53", "986")
        + _field("54", f"{amount_cents // 100}.{amount_cents % 100:02d}")
        + _field("58", "BR")
        + _field("59", _ascii(merchant, 25))
        + _field("60", _ascii(city, 15))
        + _field("62", _field("05", txid))
        + "6304"
    )
    return payload + crc16(payload)


def qr_png_base64(data: str) -> str:
    image = qrcode.make(data, image_factory=PyPNGImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")

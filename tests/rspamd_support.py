"""What the filtering tests share: a test zone with SPF, DKIM and DMARC records for sender
domains, DKIM-signed messages, and GTUBE. (No tests here.)"""

from __future__ import annotations

import base64
import time

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Sender domains under a real public suffix, so that rspamd finds their organisational domain;
# the loopback DNS responder is the only server asked about them.
GOOD = "good-sender.org"  # SPF allows 127.0.0.1, DKIM key published, DMARC p=reject
FORGED = "forged-sender.org"  # SPF allows only 192.0.2.1, DMARC p=reject
QUARANTINED = "quarantined-sender.org"  # SPF allows only 192.0.2.1, DMARC p=quarantine
SELECTOR = "test2026"

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


class SenderKey:
    """An RSA key for GOOD's DKIM signatures and its TXT record."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature of GOOD (relaxed/relaxed)."""
        signature = dkim.sign(
            message,
            SELECTOR.encode(),
            GOOD.encode(),
            self.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + message


def _txt(text: str) -> str:
    """A TXT rdata in zone-file syntax, split into strings of at most 255 octets."""
    return " ".join(f'"{text[i : i + 250]}"' for i in range(0, len(text), 250))


def zone(key: SenderKey) -> str:
    return "\n".join(
        [
            f"{GOOD}. 300 IN TXT {_txt('v=spf1 ip4:127.0.0.1 -all')}",
            f"{GOOD}. 300 IN MX 10 mx.{GOOD}.",
            f"mx.{GOOD}. 300 IN A 127.0.0.1",
            f"{SELECTOR}._domainkey.{GOOD}. 300 IN TXT {_txt(key.txt)}",
            f"_dmarc.{GOOD}. 300 IN TXT {_txt('v=DMARC1; p=reject')}",
            f"{FORGED}. 300 IN TXT {_txt('v=spf1 ip4:192.0.2.1 -all')}",
            f"_dmarc.{FORGED}. 300 IN TXT {_txt('v=DMARC1; p=reject')}",
            f"{QUARANTINED}. 300 IN TXT {_txt('v=spf1 ip4:192.0.2.1 -all')}",
            f"_dmarc.{QUARANTINED}. 300 IN TXT {_txt('v=DMARC1; p=quarantine')}",
            "client.test. 300 IN A 127.0.0.1",
        ]
    )


def message(sender: str, subject: str, body: str = "Hello there, see you on Monday.") -> bytes:
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    return (
        f"From: Someone <{sender}>\r\nTo: jsmith@example.com\r\nSubject: {subject}\r\n"
        f"Date: {stamp}\r\nMessage-ID: <{subject.replace(' ', '-')}.{time.time_ns()}@x>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n"
    ).encode()

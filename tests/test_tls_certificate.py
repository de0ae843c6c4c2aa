"""The self-signed certificate made on first use: once, whole, whoever asks first."""

from __future__ import annotations

import ssl
import threading

from app.settings import load_settings
from app.smtp import tls
from app.store import Store


def test_threads_asking_at_once_get_one_matching_pair(store: Store) -> None:
    # The SMTP service and Dovecot's start ask for it at the same moment on a fresh directory.
    settings = load_settings(store)
    barrier = threading.Barrier(6)
    found: list[tuple[object, object]] = []
    errors: list[BaseException] = []

    def ask() -> None:
        barrier.wait()
        try:
            found.append(tls.certificate_files(settings, store.paths))
        except BaseException as error:  # collected: the test says which
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(found)) == 1
    cert, key = found[0]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)  # raises if the key is not the certificate's
    leftovers = [p.name for p in store.paths.tls.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_an_existing_pair_is_kept(store: Store) -> None:
    settings = load_settings(store)
    cert, _ = tls.certificate_files(settings, store.paths)
    before = cert.read_bytes()
    assert tls.certificate_files(settings, store.paths)[0].read_bytes() == before

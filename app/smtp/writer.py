"""The disk writer process: stores message files durably, in batches, for one event loop.

The SMTP service hands each message's files to this child process over a pipe, so the file
system calls never wait for the service's GIL. For every batch of jobs that has arrived it
writes and fsyncs each file in ``tmp/``, renames it into place, fsyncs each destination folder
once (group commit), and only then acknowledges the batch; the service answers 250 on the ack.

Wire format, both ways a sequence of frames ``!I`` length + body:
- job:  ``!QH`` id, file count; per file ``!HHI`` + tmp folder, final folder (file system paths,
  as ``os.fsencode`` gives them), data.
- ack:  ``!QB`` id, ok; then the final file names joined by NUL, or the error text.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.errors import PostroomError
from app.mailstore import maildir, ownership

LENGTH = struct.Struct("!I")
JOB = struct.Struct("!QH")
FILE = struct.Struct("!HHI")
ACK = struct.Struct("!QB")
# Parallel fsyncs: the file system's journal commits concurrent ones together.
_FSYNC_THREADS = 16


def encode_job(job_id: int, files: Sequence[tuple[bytes, bytes, bytes]]) -> bytes:
    """One job frame: the files of one message, each (tmp folder, final folder, data), the
    folders as ``os.fsencode`` gives them."""
    parts = [JOB.pack(job_id, len(files))]
    for tmp, final, data in files:
        parts += [FILE.pack(len(tmp), len(final), len(data)), tmp, final, data]
    body = b"".join(parts)
    return LENGTH.pack(len(body)) + body


def decode_job(body: bytes) -> tuple[int, list[tuple[Path, Path, bytes]]]:
    job_id, count = JOB.unpack_from(body)
    offset = JOB.size
    files = []
    for _ in range(count):
        tmp_len, final_len, data_len = FILE.unpack_from(body, offset)
        offset += FILE.size
        tmp = _folder(body[offset : offset + tmp_len])
        offset += tmp_len
        final = _folder(body[offset : offset + final_len])
        offset += final_len
        files.append((tmp, final, body[offset : offset + data_len]))
        offset += data_len
    return job_id, files


_FOLDERS: dict[bytes, Path] = {}


def _folder(raw: bytes) -> Path:
    folder = _FOLDERS.get(raw)
    if folder is None:
        folder = _FOLDERS[raw] = Path(os.fsdecode(raw))
    return folder


def encode_ack(job_id: int, ok: bool, text: str) -> bytes:
    body = ACK.pack(job_id, int(ok)) + text.encode("utf-8", "surrogateescape")
    return LENGTH.pack(len(body)) + body


def decode_ack(body: bytes) -> tuple[int, bool, str]:
    job_id, ok = ACK.unpack_from(body)
    return job_id, bool(ok), body[ACK.size :].decode("utf-8", "surrogateescape")


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return every complete frame at the start of ``buffer``."""
    frames: list[bytes] = []
    offset = 0
    while len(buffer) - offset >= LENGTH.size:
        (length,) = LENGTH.unpack_from(buffer, offset)
        end = offset + LENGTH.size + length
        if end > len(buffer):
            break
        frames.append(bytes(buffer[offset + LENGTH.size : end]))
        offset = end
    del buffer[:offset]
    return frames


def _write(tmp: Path, final: Path, data: bytes) -> tuple[maildir.StagedFile, int]:
    """Write a file in ``tmp`` (not yet fsync'ed); the staged file and its open descriptor."""
    name = maildir.unique_name(len(data))
    try:
        fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        if final.name == "new":
            maildir.ensure(final.parent)
        else:
            for folder in (tmp, final):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    item = maildir.StagedFile(tmp / name, final / name)
    try:
        if final.name == "new":  # a Maildir's: Dovecot's mail user owns it when we are root
            ownership.claim_fd(fd)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        maildir.discard([item])
        raise
    return item, fd


def _fsync_and_close(fd: int) -> str:
    try:
        os.fsync(fd)
        return ""
    except OSError as error:
        return _describe(error)
    finally:
        os.close(fd)


def write_batch(
    jobs: list[tuple[int, list[tuple[Path, Path, bytes]]]], pool: ThreadPoolExecutor
) -> bytes:
    """Store a batch; the acks to send (every file and folder fsync'ed before any ok).

    The files' fsyncs run in parallel (the file system commits them together), then each job's
    files are renamed into place and each folder is fsync'ed once.
    """
    written: dict[int, list[tuple[maildir.StagedFile, int]]] = {}
    errors: dict[int, str] = {}
    for job_id, files in jobs:
        done: list[tuple[maildir.StagedFile, int]] = []
        try:
            for tmp, final, data in files:
                done.append(_write(tmp, final, data))
            written[job_id] = done
        except (OSError, PostroomError) as error:
            for item, fd in done:
                os.close(fd)
                maildir.discard([item])
            errors[job_id] = _describe(error)
    everything = [pair for done in written.values() for pair in done]
    results = dict(
        zip(
            (id(p) for p in everything),
            pool.map(_fsync_and_close, [fd for _, fd in everything]),
            strict=True,
        )
    )
    staged: dict[int, list[maildir.StagedFile]] = {}
    for job_id, done in written.items():
        items = [item for item, _ in done]
        failure = next((results[id(p)] for p in done if results[id(p)]), "")
        if failure:
            maildir.discard(items)
            errors[job_id] = failure
            continue
        try:
            maildir.move_into_place(items)
            staged[job_id] = items
        except OSError as error:
            errors[job_id] = _describe(error)
    folders: dict[Path, str] = {}
    for items in staged.values():
        for item in items:
            folders.setdefault(item.final.parent, "")
    for folder in folders:
        try:
            maildir.fsync_directory(folder)
        except OSError as error:
            folders[folder] = _describe(error)
    acks = []
    for job_id, _ in jobs:
        if job_id in errors:
            acks.append(encode_ack(job_id, False, errors[job_id]))
            continue
        items = staged[job_id]
        failure = next((folders[i.final.parent] for i in items if folders[i.final.parent]), "")
        if failure:
            maildir.take_back(items)
            acks.append(encode_ack(job_id, False, failure))
        else:
            acks.append(encode_ack(job_id, True, "\0".join(i.final.name for i in items)))
    return b"".join(acks)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error)


def main() -> int:
    """Serve jobs from stdin until it closes; acks on stdout."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the parent stops
    # us by closing our stdin once its last message is stored, so finish the work first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    source, sink = sys.stdin.fileno(), sys.stdout.fileno()
    buffer = bytearray()
    pool = ThreadPoolExecutor(_FSYNC_THREADS, "fsync")
    while True:
        chunk = os.read(source, 1 << 20)
        if not chunk:
            pool.shutdown()
            return 0
        buffer += chunk
        frames = split_frames(buffer)
        if frames:
            acks = write_batch([decode_job(frame) for frame in frames], pool)
            view = memoryview(acks)
            while view:
                view = view[os.write(sink, view) :]


if __name__ == "__main__":
    sys.exit(main())

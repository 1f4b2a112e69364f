# Quick system calls made without letting go of the GIL (libc through ctypes.PyDLL). Python's own socket and
# file calls release the GIL around each system call; a thread that makes one while a prediction runs then
# has to take the GIL back from it, once per call. The gate's watcher (mlserve_gate.py) and the lanes
# (mlserve_lanes.py) look at the process and its connection this way while requests run.
import ctypes
import os
import select
import socket


def gil_holding_libc():
    """libc's functions called with the GIL held, or None where ctypes cannot load them."""
    try:
        libc = ctypes.PyDLL(None)
        libc.open.argtypes, libc.open.restype = [ctypes.c_char_p, ctypes.c_int], ctypes.c_int
        libc.read.argtypes, libc.read.restype = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t], ctypes.c_ssize_t
        libc.close.argtypes, libc.close.restype = [ctypes.c_int], ctypes.c_int
        libc.recv.argtypes, libc.recv.restype = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_ssize_t
        return libc
    except (OSError, AttributeError):
        return None


LIBC = gil_holding_libc()
PEEK = ctypes.create_string_buffer(1)


def readable(conn):
    """Whether `conn` has bytes to read (or was closed)."""
    try:
        fd = conn.fileno()
    except OSError:
        return False
    if fd < 0:
        return False
    if LIBC is None:
        return bool(select.select([fd], [], [], 0)[0])
    return LIBC.recv(fd, PEEK, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) >= 0


class SmallFile:
    """Reads a small file (a /proc entry) whole, into a buffer of `size` bytes; None if it cannot."""

    def __init__(self, size=256):
        self.buffer = ctypes.create_string_buffer(size) if LIBC is not None else None

    def __call__(self, path):
        if self.buffer is None:
            return None
        fd = LIBC.open(path.encode(), os.O_RDONLY)
        if fd < 0:
            return None
        try:
            count = LIBC.read(fd, self.buffer, len(self.buffer) - 1)
        finally:
            LIBC.close(fd)
        return self.buffer.raw[:count] if count >= 0 else None

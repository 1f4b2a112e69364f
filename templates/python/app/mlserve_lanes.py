# One connection from mlserve to the lean protocol's socket (a lane): its frames, read by one thread at a
# time, and the threads that answer them under the gate (mlserve_gate.py).
#
# mlserve sends all of a worker's requests on one connection without waiting for answers; each frame has an
# id and answers come back in any order. Frames (little-endian):
#
#   request:  u32 length (of what follows) | u32 id | u32 meta length | meta | body
#             meta: JSON [method, path, query, [name, value, name, value, ...]]
#   cancel:   u32 length (8) | u32 id | u32 0          mlserve gave up on that request: if it has not started,
#                                                      it never does
#   response: u32 length | u32 id | u8 kind | u16 status | u32 meta length | meta | body
#             kind ANSWER, PASS (nothing ran: send it over HTTP) or DROPPED (cancelled before it started:
#             every cancelled request gets one frame back, its answer or this, so mlserve forgets its id)
#
# A busy worker reads no frame while it runs one: they wait in the connection, and the thread that ends a
# request reads what came meanwhile and runs the oldest next, so under load one thread does everything and
# nothing else wakes. A worker with nothing to run watches the connection for a moment (SPIN) before it
# sleeps in recv(2): a client calling in a loop finds the worker awake, on a CPU whose caches still hold the
# model's code (measured on the `sum` fixture: a call costs 25-40 % more after a 1 ms sleep than back to back).
import collections
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback

from mlserve_gil import readable

REQUEST_HEAD = struct.Struct("<III")
RESPONSE_HEAD = struct.Struct("<IIBHI")
READ_SIZE = 1 << 16
ANSWER, PASS, DROPPED = 0, 1, 2
# What uvicorn answers when the app raises before it started a response.
APP_CRASHED = (500, [("content-type", "text/plain; charset=utf-8"), ("content-length", "21")], b"Internal Server Error")


def spin_seconds():
    """MLSERVE_LEAN_SPIN_US: how long an idle worker watches for the next frame before it sleeps (0: never)."""
    try:
        return max(0.0, float(os.environ.get("MLSERVE_LEAN_SPIN_US", "1000"))) / 1e6
    except ValueError:
        return 0.001


SPIN = spin_seconds()


class Lane:
    """One mlserve connection. `answer(method, path, query, headers, body)` answers a request:
    (kind, status, [(name, value)], body)."""

    def __init__(self, conn, gate, answer, spin=None):
        self.conn = conn
        self.gate = gate
        self.answer = answer
        self.spin = SPIN if spin is None else spin
        self.buffer = bytearray()
        # Under gate.lock: requests read and not started, oldest first ((id, meta, body)); whether a thread is
        # reading the connection; whether it has closed; the threads serving it.
        self.queue = collections.deque()
        self.reading = False
        self.closed = False
        self.threads = 0
        self.send_lock = threading.Lock()

    def start(self):
        """Serves the connection, on a thread of its own to begin with."""
        self.gate.add(self)
        with self.gate.lock:
            self.threads += 1
        threading.Thread(target=self.serve, name="mlserve-lean", daemon=True).start()

    def waiting(self):
        """With gate.lock held: whether a request waits to start (queued, or unread with no thread reading)."""
        return not self.closed and bool(self.queue or (not self.reading and readable(self.conn)))

    def promote(self):
        """With gate.lock held (the watcher): starts one more thread, holding a slot, if a request waits."""
        if not self.waiting():
            return False
        self.gate.began()
        self.threads += 1
        threading.Thread(target=self.serve, args=(True,), name="mlserve-lean", daemon=True).start()
        return True

    def serve(self, slot=False):
        """One thread's work: the next request while it holds a slot, else reading until one comes."""
        try:
            while True:
                request = self.next(slot)
                if request is None:
                    return
                slot = True
                self.respond(*request)
        finally:
            with self.gate.lock:
                self.threads -= 1
                last = self.threads == 0 and self.closed
            if last:
                self.gate.remove(self)
                self.conn.close()

    def next(self, slot):
        """The request this thread runs next, holding a slot; None when it stops (its slot given back)."""
        gate = self.gate
        if slot:
            with gate.lock:
                if gate.busy and gate.running > 1:
                    # The process is busy: the requests running beside this one take the next.
                    gate.running -= 1
                    slot = False
        if slot:
            # Frames that came while it ran first (a cancel among them may take a waiting request out).
            with gate.lock:
                drain = not self.reading and not self.closed
                self.reading = self.reading or drain
            open_ = self.receive(block=False) if drain else True
            with gate.lock:
                if drain:
                    self.reading = False
                    if not open_:
                        self.close()
                if self.queue:
                    return self.queue.popleft()
                gate.running -= 1
                if gate.running == 0:
                    # Another connection's request may wait for a running one to end (mlserve uses one per worker).
                    any(lane.queue and lane.promote() for lane in gate.lanes if lane is not self)
        with gate.lock:
            if self.reading or self.closed:
                return None
            self.reading = True
        deadline = time.monotonic() + self.spin
        while True:
            with gate.lock:
                if self.queue:
                    self.reading = False
                    if gate.running > 0:
                        # A running thread takes it when it is done, or the watcher starts it.
                        return None
                    gate.began()
                    return self.queue.popleft()
                spinning = gate.running == 0 and self.spin > 0 and time.monotonic() < deadline
            if not self.receive(block=not spinning):
                with gate.lock:
                    self.reading = False
                    self.close()
                return None

    def receive(self, block):
        """Reads what the connection holds (first waiting for something, when `block`) and queues its frames.
        False when mlserve closed it or sent a frame that is not one."""
        flags = 0 if block else socket.MSG_DONTWAIT
        while True:
            try:
                data = self.conn.recv(READ_SIZE, flags)
            except BlockingIOError:
                break
            except OSError:
                return False
            if not data:
                return False
            self.buffer += data
            if len(data) < READ_SIZE:
                break
            flags = socket.MSG_DONTWAIT
        return self.cut()

    def cut(self):
        """Takes the complete frames out of the buffer: requests join the queue, a cancel takes its request out."""
        buffer, at, frames = self.buffer, 0, []
        while len(buffer) - at >= REQUEST_HEAD.size:
            length, request_id, meta_length = REQUEST_HEAD.unpack_from(buffer, at)
            if length < 8 or meta_length > length - 8:
                return False
            end = at + 4 + length
            if end > len(buffer):
                break
            start = at + REQUEST_HEAD.size
            frames.append((request_id, bytes(buffer[start : start + meta_length]), bytes(buffer[start + meta_length : end])))
            at = end
        if at:
            del buffer[:at]
        dropped = []
        if frames:
            with self.gate.lock:
                for frame in frames:
                    if frame[1]:
                        self.queue.append(frame)
                    elif self.cancel(frame[0]):
                        dropped.append(frame[0])
        for request_id in dropped:
            self.send(RESPONSE_HEAD.pack(11, request_id, DROPPED, 0, 0))
        return True

    def cancel(self, request_id):
        """With gate.lock held: a request mlserve gave up on is not run, if it has not started (True)."""
        for i, (queued_id, _, _) in enumerate(self.queue):
            if queued_id == request_id:
                del self.queue[i]
                return True
        return False

    def close(self):
        """With gate.lock held: mlserve closed the connection; what waited on it will not be answered."""
        if not self.closed:
            self.closed = True
            self.queue.clear()
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def respond(self, request_id, meta, body):
        try:
            method, path, query, headers = json.loads(meta)
            kind, status, out_headers, out_body = self.answer(method, path, query, headers, body)
        except Exception:
            print("ERROR:    Exception in mlserve's lean protocol\n" + traceback.format_exc(), file=sys.stderr, flush=True)
            kind, status, out_headers, out_body = (ANSWER, *APP_CRASHED)
        head = json.dumps([part for pair in out_headers for part in pair]).encode("latin-1")
        self.send(RESPONSE_HEAD.pack(11 + len(head) + len(out_body), request_id, kind, status, len(head)) + head + out_body)

    def send(self, frame):
        try:
            with self.send_lock:
                self.conn.sendall(frame)
        except OSError:
            with self.gate.lock:
                self.close()

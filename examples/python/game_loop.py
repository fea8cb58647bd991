"""game_loop.py - a 60 Hz game loop that drives a current-thread rt runtime.

The game thread (this one) owns a current-thread runtime and runs every one of
its callbacks itself, inside `rt.run_budget`: at most BUDGET seconds of runtime
work per frame, the rest of the frame is the game's. No pygame needed.

 - Networking: two non-blocking UDP sockets on 127.0.0.1, both watched with
   `rt.watch`. The "client" sends PKTS_PER_FRAME packets per frame; the
   "server" callback echoes each (payload XORed, so an echo is told from the
   original); the client callback checks every echo (magic, sequence number
   seen exactly once, payload) and records its round trip in frames.
 - Level load: at frame LEVEL_FRAME a slow job ("disk I/O" plus a checksum
   over generated level data) goes to the blocking pool with
   `rt.run_blocking`; its result is checked and must arrive while the frames
   keep their pace.
 - Bursts: at a few frames the game spawns BURST small callbacks (more CPU
   than one frame's budget in all): the budget spreads them over several
   frames, and they must all run exactly once, in FIFO order.
 - Between frames the thread waits in `select` on `rt.backend_fd()` (with
   `rt.backend_timeout()`) until the frame's deadline: echoes arriving
   mid-sleep run at once while the frame's budget lasts.

Per-frame stats are printed at the end. Exit status 0 only if every check
passed; otherwise the failures are printed and the status is 1.
"""

import hashlib
import select
import socket
import struct
import sys
import threading
import time

import rtpy

HZ = 60
FRAME = 1.0 / HZ
RUN_FRAMES = 120  # ~2 s
BUDGET = 0.002  # runtime work per frame (seconds)
SLACK = 0.004  # allowed overrun of a frame's budget on a loaded machine
PKTS_PER_FRAME = 8
LEVEL_FRAME = 20
LEVEL_SLEEP = 0.15
LEVEL_BYTES = 4 << 20
BURST_FRAMES = (40, 80)
BURST = 400
BURST_SPIN = 0.00005
MAGIC = 0x52545059  # "RTPY"
HDR = struct.Struct("!IIQ")  # magic, seq, sent frame


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def load_level(seed):
    """Blocking work: 'disk I/O' then a checksum of generated level data."""
    time.sleep(LEVEL_SLEEP)
    data = hashlib.shake_256(seed).digest(LEVEL_BYTES)
    return threading.get_ident(), hashlib.sha256(data).hexdigest()


class Game:
    def __init__(self, rt):
        self.rt = rt
        self.failures = []
        self.frame = 0
        # Networking.
        self.server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (self.server, self.client):
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind(("127.0.0.1", 0))
        self.client.connect(self.server.getsockname())
        self.sent = 0
        self.echoed = set()
        self.rtt_frames = []
        self.server_watch = rt.watch(self.server, rtpy.READABLE, self.on_server)
        self.client_watch = rt.watch(self.client, rtpy.READABLE, self.on_client)
        # Level load.
        self.level = None
        self.level_frame = None
        self.level_calls = 0
        # Bursts.
        self.burst_order = []
        self.burst_expected = []
        # Stats per frame: (frame time, time in run_budget, cpu in run_budget, callbacks, left work).
        self.stats = []

    # --- runtime callbacks (all on this thread) ---
    def on_server(self, events):
        while True:
            try:
                data, addr = self.server.recvfrom(2048)
            except BlockingIOError:
                return
            self.server.sendto(bytes(b ^ 0x5A for b in data), addr)

    def on_client(self, events):
        while True:
            try:
                raw = self.client.recv(2048)
            except BlockingIOError:
                return
            data = bytes(b ^ 0x5A for b in raw)
            magic, seq, sent_frame = HDR.unpack_from(data)
            if magic != MAGIC:
                self.failures.append(f"echo with bad magic {magic:#x}")
            elif seq in self.echoed:
                self.failures.append(f"echo {seq} seen twice")
            elif data[HDR.size:] != self.payload(seq):
                self.failures.append(f"echo {seq}: payload differs")
            else:
                self.echoed.add(seq)
                self.rtt_frames.append(self.frame - sent_frame)

    def level_done(self, fut):
        self.level_calls += 1
        self.level_frame = self.frame
        self.level = fut.result()

    # --- game logic ---
    @staticmethod
    def payload(seq):
        return (b"%08d" % seq) * 4

    def send_packets(self):
        for _ in range(PKTS_PER_FRAME):
            seq = self.sent
            self.client.send(HDR.pack(MAGIC, seq, self.frame) + self.payload(seq))
            self.sent += 1

    def game_logic(self):
        if self.frame < RUN_FRAMES:
            self.send_packets()
        if self.frame == LEVEL_FRAME:
            fut = self.rt.run_blocking(load_level, b"level-1")
            fut.add_done_callback(self.level_done)
        if self.frame in BURST_FRAMES:
            for _ in range(BURST):
                n = len(self.burst_expected)
                self.burst_expected.append(n)
                self.rt.spawn(self.burst_task, n)

    def burst_task(self, n):
        spin(BURST_SPIN)
        self.burst_order.append(n)

    def run_frame(self, frame_start):
        """One frame: logic, then runtime work within the budget, then wait
        for the next frame on the backend fd (running what arrives meanwhile)."""
        self.game_logic()
        deadline = frame_start + FRAME
        used = used_cpu = 0.0
        ran = 0
        fd = self.rt.backend_fd()
        while True:
            left = BUDGET - used
            if left > 0:
                t0, c0 = time.perf_counter(), time.thread_time()
                ran += self.rt.run_budget(left)
                used += time.perf_counter() - t0
                used_cpu += time.thread_time() - c0
            now = time.perf_counter()
            if now >= deadline:
                break
            timeout = deadline - now
            if BUDGET - used > 0:
                bt = self.rt.backend_timeout()
                if bt is not None:
                    timeout = min(timeout, bt)
                select.select([fd], [], [], timeout)
            else:
                time.sleep(timeout)  # budget spent: the rest of the frame is the game's
        left_work = self.rt.backend_timeout() == 0
        self.stats.append((time.perf_counter() - frame_start, used, used_cpu, ran, left_work))

    def run(self):
        start = time.perf_counter()
        self.frame = 0
        while self.frame < RUN_FRAMES or (len(self.echoed) < self.sent or self.level is None
                                          or len(self.burst_order) < len(self.burst_expected)):
            if self.frame > RUN_FRAMES + 2 * HZ:
                self.failures.append("work still outstanding 2 s after the last frame")
                break
            self.run_frame(start + self.frame * FRAME)
            self.frame += 1
        self.server_watch.close()
        self.client_watch.close()
        self.server.close()
        self.client.close()

    def check(self):
        f = self.failures
        if len(self.echoed) != self.sent:
            f.append(f"{self.sent - len(self.echoed)} of {self.sent} packets never echoed")
        if self.level_calls != 1:
            f.append(f"level load delivered {self.level_calls} times")
        elif self.level is not None:
            pool_thread, digest = self.level
            expected = hashlib.sha256(hashlib.shake_256(b"level-1").digest(LEVEL_BYTES)).hexdigest()
            if digest != expected:
                f.append("level checksum differs")
            if pool_thread == threading.get_ident():
                f.append("level load ran on the game thread")
            if self.level_frame - LEVEL_FRAME > (LEVEL_SLEEP + 1.0) * HZ:
                f.append(f"level load took {self.level_frame - LEVEL_FRAME} frames")
        if self.burst_order != self.burst_expected:
            f.append("burst callbacks not run exactly once in FIFO order")
        over = [s for s in self.stats if s[2] > BUDGET + SLACK]
        if len(over) > len(self.stats) // 20:
            f.append(f"{len(over)} of {len(self.stats)} frames spent more than the budget + slack in run_budget")
        if not any(s[4] for s in self.stats):
            f.append("the budget never left work for the next frame (bursts should spill)")
        frame_times = [s[0] for s in self.stats]
        late = [t for t in frame_times if t > FRAME * 1.5]
        if len(late) > len(frame_times) // 10:
            f.append(f"{len(late)} of {len(frame_times)} frames over 1.5x the frame time")

    def report(self):
        print(f"{'frames':>8} {'frame ms avg/max':>18} {'run_budget ms avg/max':>22} {'callbacks':>10} {'left':>5}")
        for i in range(0, len(self.stats), 15):
            chunk = self.stats[i:i + 15]
            ft = [s[0] * 1e3 for s in chunk]
            rb = [s[1] * 1e3 for s in chunk]
            print(f"{i:>3}-{i + len(chunk) - 1:<4} {sum(ft) / len(ft):>8.2f} / {max(ft):<7.2f} "
                  f"{sum(rb) / len(rb):>10.3f} / {max(rb):<9.3f} {sum(s[3] for s in chunk):>10} "
                  f"{sum(s[4] for s in chunk):>5}")
        rtt = sorted(self.rtt_frames) or [0]
        print(f"frames {len(self.stats)}, packets {self.sent} sent / {len(self.echoed)} echoed "
              f"(round trip in frames: median {rtt[len(rtt) // 2]}, max {rtt[-1]}), "
              f"burst callbacks {len(self.burst_order)}, level loaded at frame {self.level_frame} "
              f"(asked at {LEVEL_FRAME})")


def main():
    with rtpy.Runtime("current_thread", blocking_threads=2) as rt:
        game = Game(rt)
        game.run()
    game.check()
    game.report()
    if game.failures:
        for msg in game.failures:
            print("FAIL:", msg, file=sys.stderr)
        return 1
    print("game_loop: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# The log writer between a slot's app and its log file: log-writer.py FILE, the app's output on
# stdin. Both runners start it (log_writer in lib/slots.sh), so that logrotate can rename FILE
# and create a new one without a restart of the app and without copytruncate's lost lines.
#
# Python because dnf, Amazon Linux 2023's package manager, is written in it: /usr/bin/python3 is
# on every AL2023 image, the minimal one included. gawk with its filefuncs extension could stat
# the path too, but its buffered print cannot say how many bytes a full disk refused, which
# os.write does. Standard library only, and Python 3.9 (AL2023's) is enough.
import os
import select
import signal
import sys
import time

# How often an idle writer looks whether FILE was rotated, and retries a FILE it could not open:
# an idle app must not keep the rotated file open until the next rotation compresses it.
IDLE_CHECK_S = 1.0
CHUNK = 65536


def say(text):
    """To stderr (the unit's journal on a host), never fatal: the writer must outlive its reader."""
    try:
        sys.stderr.write("bluegreen log writer: %s\n" % text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Writer:
    def __init__(self, path):
        self.path = path
        self.fd = -1
        self.ident = None  # (st_dev, st_ino) of the file self.fd is
        self.mid_line = False  # the last byte written to self.fd is not a newline
        self.lost = 0  # bytes dropped since the last line that said so
        self.skipping = False  # dropping the rest of an app line whose start was lost
        self.error = ""
        self.next_open = 0.0

    def follow(self):
        """Moves to the file the path names now, but only between two lines: a line is never
        split across two files, and until logrotate has created the new file the old one (renamed)
        still takes the lines, so there is no moment when a line has nowhere to go."""
        if self.fd >= 0 and self.mid_line:
            return
        try:
            st = os.stat(self.path)
            if self.fd >= 0 and (st.st_dev, st.st_ino) == self.ident:
                return
        except FileNotFoundError:
            if self.fd >= 0:
                return  # renamed, not created yet: the old file keeps taking lines
        except OSError as e:
            self.error = e.strerror
            return
        now = time.monotonic()
        if now < self.next_open:
            return
        try:
            # Created only where the app's user may (the process runner's own directory); on a
            # host the engine creates it owned by the slot user, and logrotate's 'create' does.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as e:
            if not self.error.startswith("cannot open"):
                say("cannot open %s: %s; its lines are counted as lost, and opening it is retried every %ss" % (self.path, e.strerror, IDLE_CHECK_S))
            self.error = "cannot open it: " + e.strerror
            self.next_open = now + IDLE_CHECK_S
            return
        if self.fd >= 0:
            os.close(self.fd)
        st = os.fstat(fd)
        # A file logrotate created is empty; the engine's lines end with a newline.
        self.fd, self.ident, self.mid_line = fd, (st.st_dev, st.st_ino), False

    def put(self, data):
        """Writes data; returns how many bytes of it could not be written (a full disk)."""
        if self.fd < 0:
            return len(data)
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as e:
                # ENOSPC, EDQUOT, EIO...: dropping is better than making the app wait on a pipe
                # that fills up, which would stop it serving.
                self.error = e.strerror
                return len(view)
            self.mid_line = view[n - 1 : n] != b"\n"
            view = view[n:]
        return 0

    def report_loss(self):
        """One line saying what was lost, once the file takes lines again; False if it does not."""
        if not self.lost:
            return True
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        note = "%s bluegreen log writer: %d bytes of the app's output were lost: %s could not be written (%s)\n" % (
            stamp, self.lost, self.path, self.error)
        data = (b"\n" if self.mid_line else b"") + note.encode()
        if self.put(data):
            return False
        self.lost = 0
        return True

    def take(self, data):
        if self.skipping:
            end = data.find(b"\n")
            if end < 0:
                self.lost += len(data)
                return
            self.lost += end + 1
            data = data[end + 1 :]
            self.skipping = False
        if not data:
            return
        if not self.report_loss():
            self.lost += len(data)
            self.skipping = not data.endswith(b"\n")
            return
        unwritten = self.put(data)
        if unwritten:
            self.lost += unwritten
            self.skipping = not data.endswith(b"\n")


def main():
    if len(sys.argv) != 2:
        say("usage: log-writer.py FILE (the app's output on stdin)")
        return 2
    # Only the end of its input ends it: systemd's stop (SIGTERM) and a terminal's ^C or hangup
    # reach the app, whose last lines, written as it shuts down, must still reach the file. The
    # caller ignores them before exec too, so there is no window before this line runs.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # Whatever the starting shell left open (a deploy's lock, a pipe someone waits on to close)
    # is not the writer's to keep.
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            try:
                os.close(int(name))
            except OSError:
                pass
    writer = Writer(sys.argv[1])
    writer.follow()
    while True:
        ready, _, _ = select.select([0], [], [], IDLE_CHECK_S)
        if ready:
            data = os.read(0, CHUNK)
            if not data:
                break
            if writer.mid_line:
                # The rest of the line the old file has begun goes there too.
                end = data.find(b"\n") + 1
                writer.take(data[:end])
                data = data[end:]
            writer.follow()
            writer.take(data)
        else:
            writer.follow()
            writer.report_loss()
    # End of input: the app has exited. A loss that the disk still refuses to report is said on
    # stderr (the unit's journal on a host).
    if not writer.report_loss():
        say("%d bytes of the app's output were lost at its end: %s could not be written (%s)" % (writer.lost, writer.path, writer.error))
    return 0


if __name__ == "__main__":
    sys.exit(main())

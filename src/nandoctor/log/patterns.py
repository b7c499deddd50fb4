"""The byte patterns the log parser scans for, one pass per family of lines.

Speed comes from letting the regex engine skip uninteresting text in C: every
pattern starts with a literal (``Iteration ``, ``net output #``, ``] Layer ``) or
with ``]``/newline followed by a one-character look-ahead, which Python's ``re``
rejects without trying the alternatives. One big alternation would be ~30x slower
(measured), so each family gets its own pass over a chunk. ``RARE_RE`` and
``RAW_RE`` are not even run over the whole chunk: ``scan`` tries them only where
numpy found a plausible start.

Messages are matched on their text only: the glog prefix (with or without year),
thread id and ``file:line`` vary between Caffe versions and forks and are ignored.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A value as printed: a %g number, nan/inf in any spelling (also MSVC's 1.#QNAN,
# nan(ind)); stops at whitespace so suffixes such as "[ 0 / 70000 ]" are left out.
VALUE = rb"([^\s,;]+)"

# "Iteration N" lines: loss (all formats), lr, Testing net, MultiStep Status. Counters have at
# most 20 digits (Caffe prints ints): a longer digit run is no counter, and int() of one
# thousands of digits long raises.
ITERATION_RE = re.compile(rb"Iteration (\d{1,20})(?!\d)([^\n]*)")
# The same lines with the two everyday shapes taken apart by the regex engine (the rest of
# the line, group 5, only when neither fits): BVLC's "Iteration N, lr = V" and
# "Iteration N (x iter/s, Ys/K iters), loss = V", each ending its line.
_EOL = rb"(?=\r?\n|\r?\Z)"
ITERATION_FAST_RE = re.compile(
    rb"Iteration (\d{1,20})(?!\d)(?:, lr = ([^\s,]+)" + _EOL
    + rb"| \([^)\n]*, ([0-9.eE+-]+)s/\d+ iters?\), loss = ([^\s,;]+)" + _EOL
    + rb"|([^\n]*))"
)  # fmt: skip
SPEED_RE = re.compile(rb"^ \(([^)\n]*)\)")
SECONDS_RE = re.compile(rb"([0-9.eE+-]+) ?s(?:/|$)")
LOSS_RE = re.compile(rb"loss = " + VALUE)
LR_RE = re.compile(rb"^, lr = " + VALUE)
EXTRA_RE = re.compile(rb", (\w+) = " + VALUE)
TESTING_RE = re.compile(rb"^, Testing net(?: \(#(\d{1,20})\))?")
STEP_RE = re.compile(rb"^, step = (\d{1,20})(?!\d)")

# "Train net output #k: name = v (* w = c loss)" and the Test twin.
OUTPUT_RE = re.compile(rb"net output #(\d{1,20}): (\S+) = ([^\s(]+)(?: \(\* ([^\s=]+) = ([^\s)]+) loss\))?")

# debug_info per-blob lines ([Forward]/[Backward]); the [Update] lines of 2014-2015 builds go through RARE_RE.
# The role is kept as its first letter (t/b/p): cheaper to match than the whole word.
# Two groups only (key, value): a capture costs as much as the scan; the key repeats every
# iteration, so it is split into layer/role/blob/what once per distinct key with DEBUG_KEY_RE.
DEBUG_RE = re.compile(rb"\] Layer ([^,\n]*, [tbp][a-z]* blob \S+ d[a-z]+): (\S+)")
DEBUG_KEY_RE = re.compile(rb"([^,\n]*), ([tbp])[a-z]* blob (\S+) (d[a-z]+)")
UPDATE_RE = re.compile(
    rb"([^,\n]*), param (?:blob )?(\S+) (?:\(owned[^)\n]*\) )?(?:data: ([^\s;]+);? ?)?(?:diff: (\S+))?"
)


class LogMessage(NamedTuple):
    """A message the parser recognises by how it starts: the key, and the event it records."""

    key: bytes  # the message's first bytes, after glog's "] " (or at a line start)
    event: str  # what the scanner and the parser make of it
    raw: bool = False  # printed without a glog prefix (glibc, glog's failure handler, the shell)


# Every message recognised by its first bytes, in one table: the scanner's regexes and byte
# filters (log/scan.py) and the parser's dispatch (log/parser.py) are built from it.
MESSAGES = (
    LogMessage(b"Check failed: ", "check_failed"),
    LogMessage(b"Snapshotting ", "snapshot"),
    LogMessage(b"Gradient clipping: ", "clip"),
    LogMessage(b"Initializing solver from parameters:", "dump"),
    LogMessage(b"Initializing net from parameters:", "dump"),
    LogMessage(b"Top shape: ", "top_shape"),  # by the thousand in net setup: scanned by numpy
    LogMessage(b"Setting up ", "setting_up"),  # likewise
    LogMessage(b"Creating Layer ", "creating_layer"),  # likewise
    LogMessage(b"Creating training net ", "net_created"),
    LogMessage(b"Creating test net ", "net_created"),
    LogMessage(b"with loss weight ", "loss_weight"),
    LogMessage(b"Restarting data prefetching", "data_restart"),
    LogMessage(b"Restoring previous solver status from ", "resume"),
    LogMessage(b"Resuming from ", "resume"),
    LogMessage(b"Optimization Done", "optimization_done"),
    LogMessage(b"Optimization stopped early", "stopped_early"),
    LogMessage(b"Solving ", "solving"),
    LogMessage(b"Learning Rate Policy: ", "lr_policy"),
    LogMessage(b"Test loss: ", "test_loss"),
    LogMessage(b"Test score #", "test_score"),
    LogMessage(b"Test interrupted", "test_interrupted"),
    LogMessage(b"[Forward] Input ", "debug_input"),
    LogMessage(b"[Backward] All net params", "debug_summary"),  # once per debug_info iteration: by numpy
    LogMessage(b"[Update] Layer ", "debug_update"),  # the [Update] lines of 2014-2015 builds
    LogMessage(b"Unknown learning rate policy", "unknown_lr_policy"),
    LogMessage(b"*** ", "crash_output", raw=True),
    LogMessage(b"double free or corruption", "crash_output", raw=True),
    LogMessage(b"free(): ", "crash_output", raw=True),
    LogMessage(b"Segmentation fault", "crash_output", raw=True),
    LogMessage(b"Floating point exception", "crash_output", raw=True),
    LogMessage(b"Aborted", "crash_output", raw=True),
    LogMessage(b"terminate called", "crash_output", raw=True),
)
EVENT = {m.key: m.event for m in MESSAGES}
# Less frequent messages, found after the glog "] " (and, for prefix-less logs, at line starts).
RARE_KEYS = tuple(m.key for m in MESSAGES if not m.raw)
# Lines printed without any glog prefix: glibc and glog's failure handler, shells, plus fatal F lines.
RAW_KEYS = tuple(m.key for m in MESSAGES if m.raw)


def _alternation(keys: tuple[bytes, ...]) -> bytes:
    """Group keys by first byte so a failing branch costs one byte comparison."""
    groups: dict[int, list[bytes]] = {}
    for k in keys:
        groups.setdefault(k[0], []).append(k)
    parts = []
    for first, ks in groups.items():
        rests = sorted((re.escape(k[1:]) for k in ks), key=len, reverse=True)
        parts.append(re.escape(bytes([first])) + b"(?:" + b"|".join(rests) + b")")
    return b"(" + b"|".join(parts) + b")"


def _firsts(keys: tuple[bytes, ...], extra: bytes = b"") -> bytes:
    chars = sorted({k[0] for k in keys} | set(extra))
    return b"[" + b"".join(re.escape(bytes([c])) for c in chars) + b"]"


RARE_RE = re.compile(rb"\] +(?=" + _firsts(RARE_KEYS) + rb")" + _alternation(RARE_KEYS) + rb"([^\n]*)")
# glog mode: lines that start without a glog prefix but matter (crash output) and fatal F lines.
RAW_RE = re.compile(
    rb"\n(?:> ?)?(?="
    + _firsts(RAW_KEYS, b"F")
    + rb")("
    + _alternation(RAW_KEYS)[1:-1]
    + rb"|F\d{4,8} [^\]\n]{0,80}\] )([^\n]*)"
)
# prefix-less mode: every rare key at a line start (after optional quote marker and spaces).
BARE_RE = re.compile(
    rb"\n(?:> ?)?[ \t]*(?=" + _firsts(RARE_KEYS + RAW_KEYS) + rb")" + _alternation(RARE_KEYS + RAW_KEYS) + rb"([^\n]*)"
)

# The end of a protobuf dump: the first line that is not text format (e.g. the next glog line).
BLOCK_END_RE = re.compile(rb"\n(?!(?:> ?)?+[ \t]*(?:[A-Za-z_][A-Za-z0-9_.]*[ \t]*[:{<\[]|[}>\]]|#|\r?\n|\r?$))")
QUOTE_RE = re.compile(rb"^> ?", re.MULTILINE)

RANK_RE = re.compile(rb"[\[(](\d+(?:\.\d+)?)[\])] $")
CLIP_RE = re.compile(rb"L2 norm ([^\s>]+) > ([^\s)]+)\) by scale factor ([^\s]+)")
SUMMARY_RE = re.compile(rb"L1 norm = \(([^,\s]+), ([^)\s]+)\); L2 norm = \(([^,\s]+), ([^)\s]+)\)")
NET_FILE_RE = re.compile(
    rb"(?:from net file|specified by net file|specified in (?:net_param|train_net_param|test_net_param))[: ]*(\S*)"
)
TEST_NET_RE = re.compile(rb"\(#(\d{1,20})\)")
SNAPSHOT_RE = re.compile(rb"(?:solver state )?to (?:binary proto file |HDF5 file )?(\S+)")
TOP_SHAPE_RE = re.compile(rb"([\d ]*)\((\d+)\)")

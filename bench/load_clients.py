"""The users of the load test: salespeople and an administrator over JSON-RPC.

Each request is timed and kept as a ``Request``; a JSON-RPC error, an HTTP error or
a timeout is an error. Salespeople only touch deals they own, and remember what
they last asked of each (stage, active) so that lost edits can be counted.
"""

import itertools
import random
import threading
import time
from dataclasses import dataclass

import requests
from funnel_bench import FUNNEL_FIELDS

FUNNEL_DOMAIN = [("type", "=", "opportunity")]
REQUEST_TIMEOUT = 130  # seconds: longer than the server's limit_time_real
_ids = itertools.count(1)


@dataclass
class Request:
    who: str
    kind: str
    start: float  # time.monotonic()
    seconds: float
    error: str = ""


class Rpc:
    def __init__(self, url, db, login, password, log):
        self.url, self.who, self.log = url, login, log
        self.session = requests.Session()
        self.count, self.last = 0, None
        if not self.call(
            "authenticate",
            "/web/session/authenticate",
            {"db": db, "login": login, "password": password},
        ):
            raise SystemExit(f"{login} could not log in: {self.last.error}")

    def call(self, kind, path, params):
        """Post one JSON-RPC call; its outcome goes to the log, its result back
        (None after an error)."""
        start = time.monotonic()
        error, result = "", None
        try:
            reply = self.session.post(
                self.url + path,
                timeout=REQUEST_TIMEOUT,
                json={"jsonrpc": "2.0", "method": "call", "id": next(_ids), "params": params},
            )
            reply.raise_for_status()
            body = reply.json()
            if "error" in body:
                data = body["error"].get("data") or {}
                error = f"{data.get('name', 'error')}: {data.get('message', body['error'])}"
            else:
                result = body.get("result")
        except (requests.RequestException, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.last = Request(self.who, kind, start, time.monotonic() - start, error[:300])
        self.count += 1
        self.log.append(self.last)
        return None if error else result

    def kw(self, kind, model, method, args, **kwargs):
        return self.call(
            kind,
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": args, "kwargs": kwargs},
        )


def read_funnel(rpc):
    # as the graph view loads: the grouped measures, then the notice it shows
    rpc.kw(
        "read_funnel",
        "sales.funnel.report",
        "web_read_group",
        [],
        domain=FUNNEL_DOMAIN,
        fields=FUNNEL_FIELDS,
        groupby=["step_id"],
        lazy=False,
    )
    return rpc.kw("notice", "sales.funnel.report", "get_update_notice", [])


class Clock:
    """What the users share: the server, the logs, and the start, once all are in."""

    def __init__(self, url, db, clients, seconds):
        self.url, self.db, self.seconds = url, db, seconds
        self.log, self.warmup_log = [], []
        self.start = self.until = None
        self.barrier = threading.Barrier(clients + 1, action=self.go, timeout=600)

    def go(self):
        self.start = time.monotonic()
        self.until = self.start + self.seconds


class Salesperson(threading.Thread):
    """Moves, loses, restores its deals and reads the funnel until the clock's end."""

    def __init__(self, login, deals, stages_by_team, reasons, clock, think, max_requests, seed):
        super().__init__(daemon=True)
        self.login, self.clock, self.think, self.max_requests = login, clock, think, max_requests
        self.rpc = None
        self.stages_by_team, self.reasons = stages_by_team, reasons
        self.random = random.Random(seed)
        # deal id -> [team, stage, active] as last asked (or found at the start)
        self.intent = {d["id"]: [d["team_id"], d["stage_id"], d["active"]] for d in deals}
        self.unsure = set()  # deals whose last edit failed: their state is unknown

    def run(self):
        # Logging in and a first read load the registry in each worker: that is not
        # the steady state, so it happens before the clock starts.
        self.rpc = rpc = Rpc(
            self.clock.url, self.clock.db, self.login, "load", self.clock.warmup_log
        )
        read_funnel(rpc)
        rpc.log = self.clock.log
        self.clock.barrier.wait()
        rnd = self.random
        while time.monotonic() < self.clock.until and rpc.count < self.max_requests:
            deal = rnd.choice(list(self.intent))
            team, stage, active = self.intent[deal]
            roll = rnd.random()
            if roll < 0.35:
                read_funnel(rpc)
            elif not active:
                self.edit(deal, "restore", stage, True, "action_unarchive", [[deal]])
            elif roll < 0.85:
                target = rnd.choice([s for s in self.stages_by_team[team] if s != stage])
                self.edit(deal, "move", target, True, "write", [[deal], {"stage_id": target}])
            else:
                self.edit(
                    deal,
                    "lose",
                    stage,
                    False,
                    "action_set_lost",
                    [[deal]],
                    lost_reason_id=rnd.choice(self.reasons),
                )
            time.sleep(rnd.uniform(*self.think))

    def edit(self, deal, kind, stage, active, method, args, **kwargs):
        self.intent[deal][1:] = [stage, active]
        # action_* return False or an action: only the error matters
        self.rpc.kw(kind, "crm.lead", method, args, **kwargs)
        if self.rpc.last.error:
            self.unsure.add(deal)
        else:
            self.unsure.discard(deal)


class Administrator(threading.Thread):
    """After ``delay`` s: resequences the shared stages as the stage list's drag does,
    toggles Is Won on a shared stage and back, presses Rebuild Stage History; polls
    the funnel's notice every second until the background work is over (or
    ``deadline``). ``events`` keeps (time, what) of its actions and of the notice."""

    def __init__(self, rpc, delay, pause, deadline, jobs_left):
        super().__init__(daemon=True)
        self.rpc, self.delay, self.pause, self.deadline = rpc, delay, pause, deadline
        self.jobs_left = jobs_left  # callable: background jobs queued, from the database
        self.events = []
        self.done = threading.Event()  # set by the caller when the users stopped

    def note(self, what):
        self.events.append((time.monotonic(), what))

    def run(self):
        start = time.monotonic()
        actions = iter([self.resequence, self.toggle_won, self.toggle_won, self.rebuild])
        next_at = start + self.delay
        finished = False
        while time.monotonic() < self.deadline:
            if next_at and time.monotonic() >= next_at:
                action = next(actions, None)
                if action:
                    action()
                    next_at = time.monotonic() + self.pause
                else:
                    next_at = None
                    finished = True
            notice = self.rpc.kw("admin_notice", "sales.funnel.report", "get_update_notice", [])
            self.note(f"notice: {notice}")
            if finished and not notice and not self.jobs_left() and self.done.is_set():
                self.note("idle")
                return
            time.sleep(1)
        self.note("deadline")

    def stages(self):
        return (
            self.rpc.kw(
                "admin_read",
                "crm.stage",
                "search_read",
                [],
                fields=["id", "team_id", "is_won"],
                order="sequence, id",
            )
            or []
        )

    def resequence(self):
        stages = self.stages()
        shared = [s["id"] for s in stages if not s["team_id"]]
        ids = [s["id"] for s in stages]
        # drag the first shared stage below the next one
        first, second = ids.index(shared[0]), ids.index(shared[1])
        ids.insert(second, ids.pop(first))
        self.note("resequence")
        self.rpc.call(
            "resequence",
            "/web/dataset/resequence",
            {"model": "crm.stage", "ids": ids, "field": "sequence", "offset": 1},
        )

    def toggle_won(self):
        # the first call sets Is Won on a shared stage that is not won, the second
        # takes it back
        if not getattr(self, "toggled", None):
            stage = next(s for s in self.stages() if not s["team_id"] and not s["is_won"])
            self.toggled, value = stage["id"], True
        else:
            value = False
        self.note(f"is_won {value} on stage {self.toggled}")
        self.rpc.kw("toggle_won", "crm.stage", "write", [[self.toggled], {"is_won": value}])

    def rebuild(self):
        self.note("rebuild")
        self.rpc.kw("rebuild", "res.config.settings", "action_rebuild_stage_history", [[]])

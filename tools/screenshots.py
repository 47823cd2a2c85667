"""Take the README screenshots of sales_funnel_report from a running Odoo 18.0.

Start the demo server first (``./dev run --reset``), then, from the repository root:

    .venv/bin/python tools/screenshots.py [--url http://localhost:8069] [--db sales_funnel]
        [--login admin] [--password admin] [--out docs/screenshots]

The script starts a headless Chromium of its own (Debian's ``chromium``, or --chromium
PATH), drives it through the DevTools protocol with websocket-client (as Odoo's browser
tests do), logs in through /web/login and saves:

    funnel-view.png           Sales > Funnel, the funnel view (the file name gets
                              --suffix, e.g. funnel-view-ru.png for a Russian user)
    funnel-graph.png          Sales > Funnel, bar chart of Reached per step
    funnel-pivot.png          pivot: steps x Reached, Lost, Conversion (%), Average/Median Days
    funnel-loss-reasons.png   pivot of lost deals: steps x loss reasons, measure Lost
    deal-stage-history.png    a demo deal's form on its Stage History tab
    stuck-deals.png           CRM pipeline of the demo team: days in stage, stuck badges

--only NAME (repeatable) takes only those pictures.

Each funnel picture shows the "Direct Sales" demo team over all its data (no date filter).
The views are set up by opening the funnel action with a context of our own (search
defaults, pivot_* and graph_* keys) through the web client's action service: nothing is
written to the database.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import xmlrpc.client
from pathlib import Path

import websocket

FUNNEL_ACTION = "sales_funnel_report.sales_funnel_report_action"
SALES_MENU = "sales_funnel_report.sales_funnel_report_menu_sale"
DEMO_TEAM = ("sales_funnel_report", "demo_team_direct_sales")
DEMO_TEAM_NAME = "Direct Sales"
# /odoo/crm/ID: the deal's form under CRM > Pipeline (path of crm.action_your_pipeline).
DEAL_PATH = "crm"
PIPELINE_ACTION = "crm.crm_lead_action_pipeline"
CRM_MENU = "crm.crm_menu_root"
PICTURES = (
    "funnel-view",
    "funnel-graph",
    "funnel-pivot",
    "funnel-loss-reasons",
    "deal-stage-history",
    "stuck-deals",
)

# Hidden in every picture: tour tips, notifications, chat windows, the text cursor.
HIDE_CSS = """
.o_tour_pointer, .o_notification_manager, .o-mail-ChatHub, .o-mail-ChatWindowContainer,
.o_debug_manager { display: none !important; }
* { caret-color: transparent !important; }
"""

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ScreenshotError(Exception):
    pass


# --- Odoo over XML-RPC: look-ups only -----------------------------------------------------
class Odoo:
    def __init__(self, url, db, login, password):
        self.db, self.password = db, password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        self.uid = common.authenticate(db, login, password, {})
        if not self.uid:
            raise ScreenshotError(f"cannot log in to {url} database {db} as {login}")
        self.models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def call(self, model, method, *args, **kwargs):
        return self.models.execute_kw(
            self.db, self.uid, self.password, model, method, list(args), kwargs
        )

    def demo_team_id(self):
        module, name = DEMO_TEAM
        rows = self.call(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            fields=["res_id"],
        )
        if rows:
            return rows[0]["res_id"]
        ids = self.call("crm.team", "search", [("name", "=", DEMO_TEAM_NAME)], limit=1)
        if not ids:
            raise ScreenshotError(
                f"no sales team {DEMO_TEAM_NAME!r}: is this the demo database (./dev run --reset)?"
            )
        return ids[0]

    def pick_deal(self, team_id):
        """The team's deal with the most telling history: a move back and a loss if
        possible, then the most stays (at most 7, so the whole list fits the picture)."""
        stays = self.call(
            "crm.lead.stage.history",
            "search_read",
            [("team_id", "=", team_id)],
            fields=["lead_id", "outcome"],
        )
        per_lead = {}
        for stay in stays:
            if stay["lead_id"]:
                per_lead.setdefault(stay["lead_id"][0], []).append(stay["outcome"])
        if not per_lead:
            raise ScreenshotError("the demo team has no stage history")

        def score(item):
            lead_id, outcomes = item
            return (
                "back" in outcomes,
                "lost" in outcomes,
                len(outcomes) <= 7,
                len(outcomes),
                -lead_id,
            )

        return max(per_lead.items(), key=score)[0]


# --- Chromium through the DevTools protocol -------------------------------------------------
def find_chromium(explicit):
    if explicit:
        return explicit
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise ScreenshotError("no Chromium found: install Debian's chromium or pass --chromium PATH")


class Browser:
    def __init__(self, executable, width, height):
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="funnel_screenshots_")
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-default-apps",
            "--disable-translate",
            "--disable-breakpad",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--lang=en-US",
            f"--window-size={width},{height}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [executable, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.ws = None
        self.next_id = 0
        try:
            self._connect()
        except Exception:
            self.close()
            raise

    def _connect(self):
        port_file = Path(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.stat().st_size > 5):
            if self.proc.poll() is not None:
                raise ScreenshotError(f"Chromium exited at start (code {self.proc.returncode})")
            if time.monotonic() > deadline:
                raise ScreenshotError("Chromium did not open its DevTools port within 30 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def resize(self, width, height):
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def send(self, method, **params):
        """Send one DevTools command and return its result (events are skipped)."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise ScreenshotError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        """Evaluate JavaScript in the page (awaiting a promise) and return its value."""
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ScreenshotError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def navigate(self, url):
        self.send("Page.navigate", url=url)

    def wait_for(self, expression, what, timeout=30.0):
        """Poll a JavaScript expression until it is truthy; fail on an Odoo error dialog."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except ScreenshotError:
                value = None  # e.g. while the page is being replaced
            if value:
                return value
            error = self.evaluate(
                "(document.querySelector('.o_error_dialog, .o_dialog .modal-body') || {})"
                ".innerText || ''"
            )
            if error:
                raise ScreenshotError(f"waiting for {what}, Odoo showed: {error[:500]}")
            if time.monotonic() > deadline:
                raise ScreenshotError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        if self.ws is not None:
            try:
                self.send("Browser.close")
            except Exception:  # closing anyway
                pass
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# --- The pictures ----------------------------------------------------------------------------
# True once the web client is idle: no RPC running, no view or sample data being shown.
IDLE_JS = """
(() => {
    if (!window.odoo || !odoo.__WOWL_DEBUG__) return false;
    if (document.querySelector('.o_loading_indicator, .o_blockUI, .o_view_sample_data,'
        + ' .o_nocontent_help, .fa-spin, .o_spinner')) return false;
    return %s;
})()
"""


def settle(browser, ready_js, what, delay=1.5):
    browser.wait_for(IDLE_JS % ready_js, what)
    browser.evaluate("document.fonts.ready.then(() => true)")
    time.sleep(delay)  # chart animation, last repaints
    browser.wait_for(IDLE_JS % ready_js, what)


def login(browser, base_url, db, user, password):
    browser.navigate(f"{base_url}/web/login?db={db}")
    browser.wait_for(
        "!!document.querySelector('form.oe_login_form input[name=login]')", "the login form"
    )
    browser.evaluate(f"""(() => {{
        const form = document.querySelector('form.oe_login_form');
        form.querySelector('input[name=login]').value = {json.dumps(user)};
        form.querySelector('input[name=password]').value = {json.dumps(password)};
        form.submit();
        return true;
    }})()""")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            state = (
                browser.evaluate("""(() => ({
                path: location.pathname,
                error: (document.querySelector('.oe_login_form .alert-danger') || {}).innerText,
                client: !!(window.odoo && odoo.__WOWL_DEBUG__
                           && document.querySelector('.o_main_navbar')),
            }))()""")
                or {}
            )
        except ScreenshotError:
            continue  # the page is being replaced
        if state.get("error"):
            raise ScreenshotError(f"login refused: {state['error'].strip()}")
        if state.get("client"):
            break
    else:
        raise ScreenshotError("the web client did not start after logging in")
    hide_distractions(browser)


def hide_distractions(browser):
    """Add HIDE_CSS to the page (again after each full page load)."""
    browser.evaluate(f"""(() => {{
        const style = document.createElement('style');
        style.textContent = {json.dumps(HIDE_CSS)};
        document.head.appendChild(style);
        return true;
    }})()""")


def open_funnel(browser, view_type, context):
    """Open Sales > Funnel with our own context instead of the action's (whose default
    'created this year' filter would hide part of the demo year)."""
    browser.evaluate(f"""(async () => {{
        const env = odoo.__WOWL_DEBUG__.root.env;
        const {{ rpc }} = odoo.loader.modules.get("@web/core/network/rpc");
        const action = await rpc("/web/action/load", {{ action_id: {json.dumps(FUNNEL_ACTION)} }});
        action.context = {json.dumps(context)};
        const menu = env.services.menu.getAll()
            .find((m) => m.xmlid === {json.dumps(SALES_MENU)});
        if (menu) env.services.menu.setCurrentMenu(menu);
        await env.services.action.doAction(action, {{
            clearBreadcrumbs: true, viewType: {json.dumps(view_type)},
        }});
        return true;
    }})()""")


def take_funnel_view(browser, out, team_id, suffix="", height=1200):
    """The funnel view, tall enough for all the demo team's steps."""
    browser.resize(browser.width, height)
    open_funnel(
        browser,
        "funnel",
        {"search_default_opportunity": 1, "search_default_team_id": team_id},
    )
    settle(
        browser,
        "!!document.querySelector('.o_funnel_view .o_funnel_summary')",
        "the funnel view",
        delay=0.5,
    )
    browser.screenshot(out / f"funnel-view{suffix}.png")
    browser.resize(browser.width, browser.height)


def take_funnel_graph(browser, out, team_id):
    open_funnel(
        browser,
        "graph",
        {
            "search_default_opportunity": 1,
            "search_default_team_id": team_id,
            "graph_measure": "lead_count",
            "graph_groupbys": ["step_id"],
            "graph_mode": "bar",
        },
    )
    settle(
        browser,
        "!!document.querySelector('.o_graph_view .o_graph_canvas_container canvas')",
        "the funnel graph",
    )
    browser.screenshot(out / "funnel-graph.png")


def take_funnel_pivot(browser, out, team_id):
    open_funnel(
        browser,
        "pivot",
        {
            "search_default_opportunity": 1,
            "search_default_team_id": team_id,
            "pivot_measures": [
                "lead_count",
                "lost_count",
                "conversion_rate",
                "duration_days",
                "duration_median_days",
            ],
            "pivot_row_groupby": ["step_id"],
            "pivot_column_groupby": [],
        },
    )
    settle(
        browser,
        "!!document.querySelector('.o_pivot_view .o_pivot table tbody tr')",
        "the funnel pivot",
    )
    browser.screenshot(out / "funnel-pivot.png")


def add_domain_facet(browser, domain):
    """Add a domain to the current view's search as a visible facet (as the custom
    filter editor does), through the search model of the view's component tree."""
    browser.evaluate(f"""(async () => {{
        const find = (node) => {{
            if (node.component && node.component.env && node.component.env.searchModel) {{
                return node.component.env.searchModel;
            }}
            for (const child of Object.values(node.children || {{}})) {{
                const found = find(child);
                if (found) return found;
            }}
            return null;
        }};
        const searchModel = find(odoo.__WOWL_DEBUG__.root.__owl__);
        if (!searchModel) throw new Error("no search model in the current view");
        await searchModel.splitAndAddDomain({json.dumps(domain)});
        return true;
    }})()""")


def take_loss_reasons(browser, out, team_id):
    open_funnel(
        browser,
        "pivot",
        {
            "search_default_opportunity": 1,
            "search_default_team_id": team_id,
            "pivot_measures": ["lost_count"],
            "pivot_row_groupby": ["step_id"],
            "pivot_column_groupby": ["lost_reason_id"],
        },
    )
    settle(
        browser,
        "!!document.querySelector('.o_pivot_view .o_pivot table tbody tr')",
        "the funnel pivot",
        delay=0.3,
    )
    # Only the rows where a deal was lost: a facet "Outcome at Stage = Lost".
    add_domain_facet(browser, json.dumps([["state", "=", "lost"]]))
    settle(
        browser,
        "document.querySelectorAll('.o_searchview_facet').length >= 3"
        " && document.querySelectorAll('.o_pivot_view .o_pivot thead tr').length >= 2",
        "the loss reason pivot",
    )
    browser.screenshot(out / "funnel-loss-reasons.png")


def take_deal_history(browser, out, base_url, deal_id):
    browser.navigate(f"{base_url}/odoo/{DEAL_PATH}/{deal_id}")
    browser.wait_for(
        "!!document.querySelector('.o_form_view .o_notebook a[name=stage_history]')",
        "the deal form",
    )
    hide_distractions(browser)
    browser.evaluate("""(() => {
        document.querySelector('.o_form_view .o_notebook a[name=stage_history]').click();
        return true;
    })()""")
    settle(
        browser,
        "!!document.querySelector("
        "'.o_notebook .tab-pane.active [name=stage_history_ids] tbody tr.o_data_row')",
        "the Stage History tab",
    )
    # Show the form from its top when the tab fits in the window, else scroll the tab's
    # bottom into sight.
    browser.evaluate("""(() => {
        const notebook = document.querySelector('.o_form_view .o_notebook');
        const scroller = document.querySelector('.o_action_manager .o_content');
        if (scroller) scroller.scrollTop = 0;
        if (notebook.getBoundingClientRect().bottom > window.innerHeight - 8) {
            notebook.scrollIntoView({ block: 'end' });
        }
        return true;
    })()""")
    time.sleep(0.5)
    browser.screenshot(out / "deal-stage-history.png")


def take_stuck_deals(browser, out, team_id):
    """CRM > Pipeline of the demo team, every salesperson's deals: each card shows its
    days in stage, red with the usual time when it is stuck."""
    context = {"search_default_team_id": team_id, "default_type": "opportunity"}
    browser.evaluate(f"""(async () => {{
        const env = odoo.__WOWL_DEBUG__.root.env;
        const {{ rpc }} = odoo.loader.modules.get("@web/core/network/rpc");
        const action = await rpc(
            "/web/action/load", {{ action_id: {json.dumps(PIPELINE_ACTION)} }});
        action.context = {json.dumps(context)};
        const menu = env.services.menu.getAll()
            .find((m) => m.xmlid === {json.dumps(CRM_MENU)});
        if (menu) env.services.menu.setCurrentMenu(menu);
        await env.services.action.doAction(action, {{
            clearBreadcrumbs: true, viewType: "kanban",
        }});
        return true;
    }})()""")
    settle(
        browser,
        "!!document.querySelector('.o_kanban_view .o_kanban_record .o_funnel_stuck')",
        "the pipeline with stuck deals",
    )
    # Odoo's generic stages (shared by all teams, empty in the demo) come first: scroll
    # them out, to the first column with deals.
    browser.evaluate("""(() => {
        const column = [...document.querySelectorAll('.o_kanban_group')]
            .find((group) => group.querySelector('.o_kanban_record'));
        if (column) column.scrollIntoView({ inline: 'start', block: 'nearest' });
        return true;
    })()""")
    time.sleep(0.5)
    browser.screenshot(out / "stuck-deals.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8069")
    parser.add_argument("--db", default=os.environ.get("FUNNEL_DB_NAME", "sales_funnel"))
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", default="docs/screenshots", type=Path)
    parser.add_argument("--chromium", help="Chromium executable (default: found on PATH)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=860)
    parser.add_argument("--suffix", default="", help="added to funnel-view's file name")
    parser.add_argument("--only", action="append", choices=PICTURES, help="take only these")
    args = parser.parse_args(argv)
    wanted = args.only or PICTURES
    base_url = args.url.rstrip("/")

    try:
        odoo = Odoo(base_url, args.db, args.login, args.password)
        team_id = odoo.demo_team_id()
        deal_id = odoo.pick_deal(team_id)
        args.out.mkdir(parents=True, exist_ok=True)
        browser = Browser(find_chromium(args.chromium), args.width, args.height)
        try:
            login(browser, base_url, args.db, args.login, args.password)
            if "funnel-view" in wanted:
                take_funnel_view(browser, args.out, team_id, args.suffix)
            if "funnel-graph" in wanted:
                take_funnel_graph(browser, args.out, team_id)
            if "funnel-pivot" in wanted:
                take_funnel_pivot(browser, args.out, team_id)
            if "funnel-loss-reasons" in wanted:
                take_loss_reasons(browser, args.out, team_id)
            if "deal-stage-history" in wanted:
                take_deal_history(browser, args.out, base_url, deal_id)
            if "stuck-deals" in wanted:
                take_stuck_deals(browser, args.out, team_id)
        finally:
            browser.close()
    except (ScreenshotError, OSError, xmlrpc.client.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name in wanted:
        if name == "funnel-view":
            name += args.suffix
        path = args.out / f"{name}.png"
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

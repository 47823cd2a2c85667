import re

from odoo.tests import HttpCase, tagged

# the module, not its classes: imported test classes would run here too
from odoo.addons.web.tests import test_js

# The Hoot suite of this addon's JS unit tests (static/tests/*.test.js): its
# files are named @sales_funnel_report/<file>, and the filter keeps only them.
SUITE = "@sales_funnel_report"


@tagged("post_install", "-at_install")
class TestFunnelViewJs(HttpCase):
    def test_funnel_view_unit_tests(self):
        """Run the funnel view's Hoot tests headless; any failed test fails this one."""
        suite = test_js.HOOTCommon._generate_hash(None, SUITE)
        # Build the test bundles first, server-side: the browser's wait for the page
        # is one minute, and compiling them on a loaded machine can take longer.
        self.authenticate("admin", "admin")
        page = self.url_open("/web/tests?preset=desktop", timeout=600).text
        for url in set(re.findall(r"/web/assets/[^\"']+\.(?:js|css)", page)):
            self.assertEqual(self.url_open(url, timeout=600).status_code, 200, url)
        self.browser_js(
            f"/web/tests?headless&loglevel=2&preset=desktop&timeout=15000&suite={suite}",
            "",
            "",
            login="admin",
            timeout=900,
            success_signal="[HOOT] test suite succeeded",
            error_checker=test_js.unit_test_error_checker,
        )

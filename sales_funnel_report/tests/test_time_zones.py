from datetime import date, datetime

import pytz

from odoo.tests import tagged

from .fulfilment_common import FulfilmentCase


@tagged("post_install", "-at_install")
class TestAccountingDatesInEveryTimeZone(FulfilmentCase):
    """Invoiced and Paid are dated by accounting dates: a reader west or east of
    UTC groups and filters them on their own day, at month ends too. Stage and
    order times are instants and follow the reader's zone, as everywhere in Odoo."""

    def setUp(self):
        super().setUp()
        self.deal_ = self.deal(datetime(2025, 11, 20, 9))
        order = self.order(self.deal_, datetime(2025, 11, 29, 23, 30))
        invoice = self.invoice(order, datetime(2025, 11, 30, 9))
        self.pay(invoice, datetime(2025, 12, 1, 9))

    def report(self, tz):
        return self.env["sales.funnel.report"].with_user(self.salesman).with_context(tz=tz)

    def days(self, tz, granularity):
        rows = self.report(tz)._read_group(
            [("lead_id", "=", self.deal_.id), ("is_fulfilment", "=", True)],
            ["step_id", f"date_in:{granularity}"],
            ["__count"],
            order="step_id",
        )
        return [(step.name, day.date() if hasattr(day, "date") else day) for step, day, _n in rows]

    def found(self, tz, day):
        """The fulfilment steps a filter on ``day`` in the reader's zone finds, as
        the search view's date filters write it: the zone's midnights in UTC."""
        zone = pytz.timezone(tz)
        start = zone.localize(datetime.combine(day, datetime.min.time()))
        end = zone.localize(
            datetime.combine(date.fromordinal(day.toordinal() + 1), datetime.min.time())
        )
        utc = [moment.astimezone(pytz.utc).replace(tzinfo=None) for moment in (start, end)]
        rows = self.report(tz).search(
            [
                ("lead_id", "=", self.deal_.id),
                ("is_fulfilment", "=", True),
                ("date_in", ">=", utc[0]),
                ("date_in", "<", utc[1]),
            ]
        )
        return rows.mapped("step_id.name")

    def test_west_of_utc(self):
        tz = "America/New_York"
        # the order was confirmed at 23:30 UTC: 18:30 in New York, the same day
        self.assertEqual(
            self.days(tz, "day"),
            [
                ("Order", date(2025, 11, 29)),
                ("Invoiced", date(2025, 11, 30)),
                ("Paid", date(2025, 12, 1)),
            ],
        )
        self.assertEqual(
            self.days(tz, "month"),
            [
                ("Order", date(2025, 11, 1)),
                ("Invoiced", date(2025, 11, 1)),
                ("Paid", date(2025, 12, 1)),
            ],
        )
        self.assertEqual(self.found(tz, date(2025, 11, 30)), ["Invoiced"])
        self.assertEqual(self.found(tz, date(2025, 12, 1)), ["Paid"])

    def test_east_of_utc(self):
        tz = "Asia/Tokyo"
        # 23:30 UTC is the next morning in Tokyo: an instant, read in the zone
        self.assertEqual(
            self.days(tz, "day"),
            [
                ("Order", date(2025, 11, 30)),
                ("Invoiced", date(2025, 11, 30)),
                ("Paid", date(2025, 12, 1)),
            ],
        )
        self.assertEqual(
            self.days(tz, "month"),
            [
                ("Order", date(2025, 11, 1)),
                ("Invoiced", date(2025, 11, 1)),
                ("Paid", date(2025, 12, 1)),
            ],
        )
        self.assertEqual(self.found(tz, date(2025, 11, 30)), ["Order", "Invoiced"])
        self.assertEqual(self.found(tz, date(2025, 12, 1)), ["Paid"])

    def test_no_zone_reads_utc(self):
        self.assertEqual(
            self.days(False, "day"),
            [
                ("Order", date(2025, 11, 29)),
                ("Invoiced", date(2025, 11, 30)),
                ("Paid", date(2025, 12, 1)),
            ],
        )

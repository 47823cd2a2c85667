from contextlib import closing

from psycopg2.errors import SerializationFailure

from odoo import SUPERUSER_ID, api, sql_db
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestConcurrentMoves(TransactionCase):
    """Two transactions move the same deal at once. The test transaction cannot
    show other connections its data, so this test commits its own deal on
    separate connections and deletes it at the end."""

    def _connection(self):
        return closing(sql_db.db_connect(self.env.cr.dbname).cursor())

    def _env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})

    def _stays(self, lead_id):
        with self._connection() as cr:
            cr.execute(
                """SELECT stage_id, date_in, date_out, outcome
                     FROM crm_lead_stage_history WHERE lead_id = %s ORDER BY date_in, id""",
                [lead_id],
            )
            return cr.fetchall()

    def test_loser_fails_cleanly_then_retries(self):
        with self._connection() as cr:
            env = self._env(cr)
            stages = env["crm.stage"].search([], limit=3, order="sequence, id")
            self.assertEqual(len(stages), 3, "the database needs three stages")
            new, second, third = stages.ids
            lead_id = (
                env["crm.lead"]
                .create({"name": "Race", "type": "opportunity", "stage_id": new, "team_id": False})
                .id
            )
            cr.commit()  # pylint: disable=invalid-commit
        try:
            with self._connection() as cr1, self._connection() as cr2:
                env1, env2 = self._env(cr1), self._env(cr2)
                # Both transactions see the deal in its first stage...
                self.assertEqual(env2["crm.lead"].browse(lead_id).stage_id.id, new)
                self.assertEqual(env1["crm.lead"].browse(lead_id).stage_id.id, new)
                # ...the first moves it and commits...
                env1["crm.lead"].browse(lead_id).write({"stage_id": second})
                cr1.commit()
                # ...the second, started before that commit, must not win.
                with self.assertRaises(SerializationFailure):
                    env2["crm.lead"].browse(lead_id).write({"stage_id": third})
                    env2.flush_all()
                cr2.rollback()

                stays = self._stays(lead_id)
                self.assertEqual(
                    [(s[0], s[3]) for s in stays], [(new, "forward"), (second, "open")]
                )
                self.assertEqual(stays[0][2], stays[1][1], "no gap between the two stays")

                # Odoo retries the request in a new transaction: now it goes through.
                env2.invalidate_all()
                env2["crm.lead"].browse(lead_id).write({"stage_id": third})
                env2.flush_all()
                cr2.commit()
            stays = self._stays(lead_id)
            self.assertEqual(
                [(s[0], s[3]) for s in stays],
                [(new, "forward"), (second, "forward"), (third, "open")],
            )
            self.assertEqual(sum(1 for s in stays if s[2] is None), 1)
        finally:
            with self._connection() as cr:
                self._env(cr)["crm.lead"].browse(lead_id).unlink()
                cr.commit()  # pylint: disable=invalid-commit

    def test_a_stage_write_does_not_wait_on_the_deals_salesperson_team_or_company(self):
        # The stays copy them without foreign keys: no key check locks their rows,
        # so another transaction holding them (FOR UPDATE) does not hold up the move.
        with self._connection() as cr:
            env = self._env(cr)
            first, second = env["crm.stage"].search([], limit=2, order="sequence, id").ids
            seller = env.ref("base.user_admin")
            held = {
                "res_users": seller.id,
                "crm_team": env["crm.team"].search([], limit=1).id,
                "res_company": seller.company_id.id,
            }
            lead_id = (
                env["crm.lead"]
                .create(
                    {
                        "name": "Held",
                        "type": "opportunity",
                        "stage_id": first,
                        "user_id": held["res_users"],
                        "team_id": held["crm_team"],
                        "company_id": held["res_company"],
                    }
                )
                .id
            )
            cr.commit()  # pylint: disable=invalid-commit
        try:
            with self._connection() as cr1, self._connection() as cr2:
                for table, record_id in held.items():
                    cr1.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [record_id])
                # a key check would wait on those rows: fail within a second instead
                cr2.execute("SET LOCAL lock_timeout = '1s'")
                self._env(cr2)["crm.lead"].browse(lead_id).write({"stage_id": second})
                cr2.commit()
                cr1.rollback()
            stays = self._stays(lead_id)
            self.assertEqual([(s[0], s[3]) for s in stays], [(first, "forward"), (second, "open")])
            with self._connection() as cr:
                cr.execute(
                    """SELECT user_id, team_id, company_id FROM crm_lead_stage_history
                        WHERE lead_id = %s AND date_out IS NULL""",
                    [lead_id],
                )
                self.assertEqual(cr.fetchall(), [tuple(held.values())])
        finally:
            with self._connection() as cr:
                self._env(cr)["crm.lead"].browse(lead_id).unlink()
                cr.commit()  # pylint: disable=invalid-commit

#!/usr/bin/python3
"""The billing simulator: a seeded random driver of billing's public API over
simulated days, checked every day against an independent model.

The model (class Model and the Sub/Inv/Acct records) never reads the engine's
money tables (invoices, lines, payments, applications, ledger, credit): it
derives every invoice, line, payment application, credit balance, reminder
and ledger balance from the operations it made and the rules README.md
documents.  It reads back only identities (which engine ids its invoices,
items and payments got) and whether a call was refused.  Each day it then
compares the engine with the model.

Run through `make sim SEED=n DAYS=d ACCOUNTS=a` (test/sim/run.sh), or inside
a cluster: test/sim/sim.py --seed n --days d --accounts a.
"""
import argparse
import datetime as dt
import random
import sys
import threading
from fractions import Fraction

import psycopg2
import psycopg2.extensions
from decimal import Decimal

psycopg2.extensions.register_adapter(
    Fraction, lambda f: psycopg2.extensions.AsIs(str(Decimal(f.numerator) / Decimal(f.denominator))))

D = dt.date
ONE = dt.timedelta(days=1)


class Mismatch(Exception):
    pass


# ---------------------------------------------------------------------------
# money: integer cents (EUR), rounding half_up (the entity's mode)

def R(x):
    """half_up: ties away from zero, of a Fraction of cents."""
    x = Fraction(x)
    s = -1 if x < 0 else 1
    a = abs(x)
    n = a.numerator // a.denominator
    if (a - n) * 2 >= 1:
        n += 1
    return s * n


def cents(text):
    """'12.34 EUR' -> 1234"""
    v = text.split()[0]
    neg = v.startswith('-')
    v = v.lstrip('+-')
    whole, _, frac = v.partition('.')
    c = int(whole) * 100 + int((frac + '00')[:2])
    return -c if neg else c


def amt(c):
    s = '-' if c < 0 else ''
    return '%s%d.%02d EUR' % (s, abs(c) // 100, abs(c) % 100)


def allocate(total, ratios):
    """billing.allocate: largest remainder, ties to the earlier part."""
    mag = abs(total)
    ssum = sum(ratios)
    parts = [mag * r // ssum for r in ratios]
    rem = [(-(mag * r % ssum), i) for i, r in enumerate(ratios)]
    left = mag - sum(parts)
    for _, i in sorted(rem)[:left]:
        parts[i] += 1
    return [-p for p in parts] if total < 0 else parts


def split(total, n):
    return allocate(total, [1] * n)


# ---------------------------------------------------------------------------
# periods: docs/design.md, Calendar (period k starts at anchor + k x cadence, clamped)

def last_day(y, m):
    return (D(y + m // 12, m % 12 + 1, 1) - ONE).day if m < 12 else 31


def add_months(anchor, k):
    m0 = anchor.year * 12 + (anchor.month - 1) + k
    y, m = divmod(m0, 12)
    nd = (D(y + (m + 1) // 12, (m + 1) % 12 + 1, 1) - ONE).day
    return D(y, m + 1, min(anchor.day, nd))


def period_start_k(anchor, cad, k):
    unit, n = cad
    if unit == 'day':
        return anchor + dt.timedelta(days=k * n)
    return add_months(anchor, k * n)


def period_containing(anchor, cad, d):
    unit, n = cad
    if unit == 'day':
        k = (d - anchor).days // n
    else:
        k = ((d.year - anchor.year) * 12 + d.month - anchor.month) // n
        while period_start_k(anchor, cad, k) > d:
            k -= 1
        while period_start_k(anchor, cad, k + 1) <= d:
            k += 1
    return period_start_k(anchor, cad, k), period_start_k(anchor, cad, k + 1)


def periods_between(anchor, cad, lo, hi):
    """periods overlapping the inclusive range [lo, hi]"""
    out = []
    s, e = period_containing(anchor, cad, lo)
    while s <= hi:
        out.append((s, e))
        s, e = e, period_containing(anchor, cad, e)[1]
    return out


def prorate(price, s, e, a, b):
    """README, Periods and proration: R(p D(s,b)/D) - R(p D(s,a)/D)"""
    tot = (e - s).days
    return R(Fraction(price * (b - s).days, tot)) - R(Fraction(price * (a - s).days, tot))


# ---------------------------------------------------------------------------
# the catalog the simulator sells

PRICES = {
    # name: (amount in units (Fraction, may be finer than a cent), scheme, cadence, usage, setup_fee, trial_days)
    'basic': (Fraction(30), 'flat', ('month', 1), 'licensed', 0, 0),
    'pro': (Fraction(60), 'flat', ('month', 1), 'licensed', 0, 0),
    'seat': (Fraction('9.99'), 'per_unit', ('month', 1), 'licensed', 0, 0),
    'setup': (Fraction('19.5'), 'flat', ('month', 1), 'licensed', Fraction(15), 0),
    'trial': (Fraction(25), 'flat', ('month', 1), 'licensed', 0, 14),
    'yearly': (Fraction(300), 'flat', ('month', 12), 'licensed', 0, 0),
    'weekly': (Fraction(7), 'flat', ('day', 7), 'licensed', 0, 0),
    'calls': (Fraction('0.035'), 'per_unit', ('month', 1), 'metered', 0, 0),
}
CADENCE_SQL = {('month', 1): '1 month', ('month', 12): '1 year', ('day', 7): '1 week'}
COUPONS = {
    # code: (duration, percent, amount_off cents, periods)
    'PCT20': ('forever', 20, None, None),
    'FIVE': ('once', None, 500, None),
    'TENX2': ('repeating', 10, None, 2),
    'BIG': ('repeating', None, 10000, 3),
}
TAXES = {None: None, 'vat': (19, False), 'incl': (20, True)}
# The default dunning policy of the simulation (no suspension, no retry: see
# CONTRIBUTING.md, The simulator, "What it does not model").
STEPS = [(-3, 'remind', 'before_due'), (1, 'remind', 'overdue'), (7, 'late_fee', 'late_fee'),
         (30, 'write_off', 'write_off')]
FEE = (Fraction(2), Fraction(5), Fraction(8))  # fee_fixed, fee_percent, fee_cap (units)
ZONES = ['UTC', 'Europe/Berlin', 'Asia/Tokyo', 'America/New_York']
RETRY_DAYS = [1, 2]


def price_value(name, qty):
    unit, scheme = PRICES[name][0], PRICES[name][1]
    v = unit * 100 if scheme == 'flat' else unit * 100 * Fraction(qty)
    return R(v) if qty != 0 else 0


# ---------------------------------------------------------------------------
# the model's records

class Item:
    def __init__(self, eid, price, qty, start):
        self.eid, self.price, self.qty, self.start, self.end = eid, price, qty, start, None

    def licensed(self):
        return PRICES[self.price][3] == 'licensed'


class Sub:
    def __init__(self, eid, acct):
        self.eid, self.acct = eid, acct
        self.items = []
        self.pending = []  # dicts: amount, kind, item, period_end, done
        self.usage = []    # dicts: item, date, qty, done
        self.usage_billed = {}  # (item eid, usage period start) -> billed cents
        self.cps = self.cpe = None
        self.cancel_on = self.pause_on = self.paused_on = None
        self.coupon = None  # (code, from, until)
        self.trial_end = None

    def stop(self):
        c = [d for d in (self.cancel_on, self.pause_on) if d is not None]
        return min(c) if c else None

    def current_items(self):
        return [i for i in self.items if i.end is None]

    def billed_for_period(self, item):
        """README, Changing a subscription: the old item is credited only if it was billed for the period"""
        return item.start <= self.cps or any(
            p['kind'] == 'proration' and p['item'] == item.eid and p['period_end'] == self.cpe for p in self.pending)


class Inv:
    def __init__(self, acct, sub, reason, issue, terms, lines, boundary, tax_incl):
        self.acct, self.sub, self.reason, self.issue = acct, sub, reason, issue
        self.due_date = issue + dt.timedelta(days=terms)
        self.lines = lines  # (kind, cents, period_start, period_end)
        self.boundary = boundary
        self.subtotal = sum(a for k, a, _, _ in lines if k not in ('discount', 'tax'))
        self.discount = sum(a for k, a, _, _ in lines if k == 'discount')
        self.tax = sum(a for k, a, _, _ in lines if k == 'tax')
        self.total = self.subtotal + self.discount + (0 if tax_incl else self.tax)
        self.paid = 0
        self.status = 'paid' if self.total == 0 else 'open'
        self.eid = None
        self.apps = []  # (source, payment eid or None, cents)
        self.notes = []  # (cents, method)
        self.touched = False
        self.steps = set()  # dunning steps taken
        self.plan = None  # (installments [(due_date, cents)], due at plan time)

    @property
    def due(self):
        return self.total - self.paid

    def cash_in(self):
        return sum(a for s, p, a in self.apps if s == 'payment') - sum(a for a, m in self.notes if m == 'refund')


class Acct:
    def __init__(self, eid, name, tz, terms, tax):
        self.eid, self.name, self.tz, self.terms, self.tax = eid, name, tz, terms, tax
        self.credit = 0
        self.invoices = []
        self.subs = []
        self.payments = {}  # eid -> dict(amount, refunded, charged_back)
        self.early = None  # (percent, days)
        self.ledger = dict.fromkeys(['receivable', 'customer_credit', 'cash', 'revenue', 'tax_payable',
                                     'discounts', 'bad_debt'], 0)
        self.cash_moves = 0  # payments - refunds - chargebacks - credit refunds
        self.reminders = set()  # (invoice eid, step name)
        self.method = None  # the default payment method's engine id
        self.attempts = []  # dicts: inv, no, status, sched

    def post(self, **entries):
        for k, v in entries.items():
            self.ledger[k] += v

    def open_invoices(self):
        return [i for i in self.invoices if i.status == 'open']

    def owes(self):
        return sum(i.due for i in self.open_invoices() if i.due > 0) - self.credit


# ---------------------------------------------------------------------------
# the engine connection

class Engine:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True

    def q(self, sql, args=()):
        with self.conn.cursor() as c:
            c.execute(sql, args)
            return c.fetchall() if c.description else None

    def one(self, sql, args=()):
        r = self.q(sql, args)
        return r[0][0] if r else None

    def set_clock(self, day):
        self.q("SET billing.clock = %s", (day.isoformat() + ' 12:00+00',))


class Refused(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


# ---------------------------------------------------------------------------
# the simulation

class Sim:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.db = Engine(args.dsn)
        self.today = None
        self.accts = []
        self.price_ids = {}
        self.tax_ids = {}
        self.ops = 0
        self.log = []
        self.seen_invoices = set()
        self.key = 0

    # -- engine calls ------------------------------------------------------
    def call(self, sql, args=()):
        """an API call; a refusal is returned as Refused, never raised"""
        self.ops += 1
        self.log.append((self.today, sql, args))
        try:
            return self.db.q(sql, args)
        except psycopg2.Error as e:
            return Refused(e.pgcode, (e.pgerror or str(e)).strip().splitlines()[0])

    def expect_ok(self, what, r):
        if isinstance(r, Refused):
            raise Mismatch('%s: the engine refused (%s %s), the model accepts it' % (what, r.code, r))
        return r

    def expect_refused(self, what, r, code):
        if not isinstance(r, Refused):
            raise Mismatch('%s: the engine accepted it, the model says %s' % (what, code))
        if r.code != code:
            raise Mismatch('%s: refused with %s (%s), the model says %s' % (what, r.code, r, code))

    def newkey(self, prefix):
        self.key += 1
        return '%s-%d-%d' % (prefix, self.args.seed, self.key)

    # -- setup -------------------------------------------------------------
    def setup(self):
        db = self.db
        db.set_clock(self.today)
        self.entity = db.one("SELECT billing.create_billing_entity('Sim GmbH', 'EUR')")
        for name, t in TAXES.items():
            if t:
                self.tax_ids[name] = db.one("SELECT billing.create_tax_rate(%s, %s, inclusive => %s)",
                                            (name, t[0], t[1]))
        prod = db.one("SELECT billing.create_product('Service')")
        for name, (unit, scheme, cad, usage, setup, trial) in PRICES.items():
            self.price_ids[name] = db.one(
                "SELECT billing.create_price(%s, 'EUR', %s, scheme => %s, cadence => %s::interval, "
                "usage_type => %s, usage_aggregation => %s, setup_fee => %s, trial_days => %s, nickname => %s)",
                (prod, unit, scheme, CADENCE_SQL[cad], usage, 'sum' if usage == 'metered' else None,
                 setup or None, trial, name))
        for code, (dur, pct, off, n) in COUPONS.items():
            db.q("SELECT billing.create_coupon(%s, %s, percent_off => %s, amount_off => %s, duration_periods => %s)",
                 (code, dur, pct, amt(off) if off else None, n))
        db.q("SELECT billing.set_collection_retry_days(%s)", (RETRY_DAYS,))
        db.q("SELECT billing.create_dunning_policy('sim', %s::jsonb, is_default => true)",
             (self.steps_json(),))
        for k in range(self.args.accounts):
            tz = self.rng.choice(ZONES)
            terms = self.rng.choice([0, 7, 14, 30])
            tax = self.rng.choice(list(TAXES))
            eid = db.one("SELECT billing.create_account(%s, %s, timezone => %s, payment_terms_days => %s, "
                         "tax_rate_id => %s)", (self.entity, 'acct %d' % k, tz, terms, self.tax_ids.get(tax)))
            a = Acct(eid, 'acct %d' % k, tz, terms, tax)
            if self.rng.random() < 0.3:
                a.method = db.one("SELECT billing.add_payment_method(%s, 'card', %s)", (eid, 'tok_%d' % k))
            if self.rng.random() < 0.25:
                a.early = (self.rng.choice([2, 3]), self.rng.choice([5, 10]))
                db.q("SELECT billing.set_early_payment_discount(%s, %s, %s)", (eid, a.early[0], a.early[1]))
            self.accts.append(a)

    def steps_json(self):
        import json
        out = []
        for off, action, name in STEPS:
            s = {'day_offset': off, 'action': action, 'name': name}
            if action == 'late_fee':
                s.update(fee_fixed=float(FEE[0]), fee_percent=float(FEE[1]), fee_cap=float(FEE[2]))
            out.append(s)
        return json.dumps(out)

    # -- the model's billing (README: The billing cycle; Lines, taxes and totals)
    def boundaries(self, s, as_of, mode):
        if mode == 'now':
            return [(as_of, None, None, None, s.status == 'canceled',
                     'subscription_cancel' if s.status == 'canceled' else 'subscription_update')]
        if s.nbd is None or s.nbd > as_of or s.status == 'suspended':
            return []
        stop = s.stop()
        out = []
        for lo, hi in periods_between(s.anchor, s.cad, s.nbd, as_of):
            b = max(lo, s.nbd)
            if b <= as_of and (stop is None or b < stop):
                out.append((b, lo, hi, None, True, 'subscription_cycle'))
        if stop is not None and stop <= as_of:
            ends = 'canceled' if stop == s.cancel_on else 'paused'
            out.append((stop, None, None, ends, True,
                        'subscription_cancel' if ends == 'canceled' else 'subscription_cycle'))
        out.sort(key=lambda x: (x[0], x[3] is not None))
        return out

    def bill(self, s, as_of, mode):
        """the invoices one call bills for a subscription; advances it (mode cycle)"""
        a = s.acct
        invs = []
        prev = None
        bs = self.boundaries(s, as_of, mode)
        for seq, (b, cs, ce, ends, with_usage, reason) in enumerate(bs):
            lines = []
            if cs is not None:
                for it in s.items:
                    if it.licensed() and it.start <= b and (it.end is None or it.end > b):
                        full = price_value(it.price, it.qty)
                        amount = full if b == cs else prorate(full, cs, ce, b, ce)
                        lines.append(('subscription', amount, b, ce))
            if with_usage:
                # README: usage dated before the trial ends is not billed (the
                # simulator's prices keep the default); it goes on a line of
                # its own at 0.00 for the trial's days
                free_until = s.trial_end
                groups = {}
                for u in s.usage:
                    if not u['done'] and u['date'] < b and (prev is None or u['date'] >= prev):
                        up = period_containing(s.anchor, s.cad, u['date'])
                        in_trial = free_until is not None and u['date'] < free_until
                        groups.setdefault((u['item'], up, in_trial), []).append(u)
                for (ieid, up, in_trial), evs in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1], not g[0][2])):
                    it = next(i for i in s.items if i.eid == ieid)
                    if in_trial:
                        ps = max(up[0], it.start)
                        pe = min(x for x in (up[1], b, it.end, free_until) if x is not None)
                        lines.append(('usage', 0, ps, pe))
                    else:
                        total = sum(u['qty'] for u in s.usage if u['item'] == ieid and up[0] <= u['date'] < min(up[1], b)
                                    and (u['done'] or u in evs)
                                    and not (free_until is not None and u['date'] < free_until))
                        billed = s.usage_billed.get((ieid, up[0]), 0)
                        value = price_value(it.price, total)
                        ps = max(x for x in (up[0], it.start, free_until) if x is not None)
                        pe = min(x for x in (up[1], b, it.end) if x is not None)
                        lines.append(('usage', value - billed, ps, pe))
                        s.usage_billed[(ieid, up[0])] = value
                    for u in evs:
                        u['done'] = True
            if seq == 0:
                for p in s.pending:
                    if not p['done']:
                        lines.append((p['kind'], p['amount'], p.get('ps'), p['period_end']))
                        p['done'] = True
            prev = b
            if not lines:
                continue
            tax = TAXES[a.tax]
            net = sum(x[1] for x in lines)
            disc = None
            if s.coupon and b >= s.coupon[1] and (s.coupon[2] is None or b < s.coupon[2]):
                dur, pct, off, n = COUPONS[s.coupon[0]]
                if pct is not None:
                    disc = -R(Fraction(net * pct, 100))
                elif net > 0:
                    disc = -min(off, net)
                if disc is not None:
                    lines.append(('discount', disc, None, None))
            if tax:
                base = net + (disc or 0)
                lines.append(('tax', R(Fraction(base * tax[0], 100 + tax[0] if tax[1] else 100)), None, None))
            invs.append(Inv(a, s, reason, as_of, a.terms, lines, b, bool(tax and tax[1])))
        if mode == 'cycle' and bs:
            rec = [x for x in bs if x[1] is not None]
            ends = [x for x in bs if x[3] is not None]
            if rec:
                s.cps, s.cpe = max(x[0] for x in rec), max(x[2] for x in rec)
            if ends:
                s.nbd = None
                s.status = ends[0][3]
                if s.status == 'canceled':
                    s.canceled_on = ends[0][0]
                    for it in s.items:
                        pass
                else:
                    s.paused_on = ends[0][0]
                    s.pause_on = None
            else:
                s.nbd = max(x[2] for x in rec)
                if s.status == 'trialing':
                    s.status = 'active'
        return invs

    # -- finalization (README: credit invoices, credit applied oldest due first)
    def map_invoices(self, invs, what):
        """pairs the model's new invoices with the engine's (identity only)"""
        accts = sorted({i.acct.eid for i in invs} | set(self.pending_accounts))
        rows = self.db.q(
            "SELECT account_id, invoice_id, subscription_id, billing_reason, coalesce(period_start, issue_date) "
            "FROM billing.invoice WHERE account_id = ANY(%s) AND invoice_id <> ALL(%s) "
            "ORDER BY account_id, subscription_id, 5, invoice_id",
            (accts, list(self.seen_invoices) or [0]))
        self.pending_accounts = []
        model = sorted(invs, key=lambda i: (i.acct.eid, i.sub.eid if i.sub else 0, i.boundary))
        rows = [r for r in rows]
        if len(rows) != len(model):
            mk = [(i.acct.eid, i.sub.eid if i.sub else None, i.reason, str(i.boundary), amt(i.total)) for i in model]
            ek = [(r[0], r[2], r[3], str(r[4])) for r in rows]
            raise Mismatch('%s: the engine made %d invoices %s, the model %d %s' % (what, len(rows), ek, len(model), mk))
        for i, r in zip(model, rows):
            if r[0] != i.acct.eid or r[2] != (i.sub.eid if i.sub else None) or r[3] != i.reason:
                raise Mismatch('%s: engine invoice %s (account %s, subscription %s, %s) where the model has '
                               'account %s subscription %s %s' % (what, r[1], r[0], r[2], r[3], i.acct.eid,
                                                                   i.sub.eid if i.sub else None, i.reason))
            i.eid = r[1]
            self.seen_invoices.add(r[1])
            i.acct.invoices.append(i)

    def finalize(self, invs):
        by_acct = {}
        for i in invs:
            by_acct.setdefault(i.acct, []).append(i)
        for a, new in by_acct.items():
            for i in new:
                a.post(receivable=i.total, revenue=-(i.total - i.tax), tax_payable=-i.tax)
            pay = list(new)
            credit_invs = [i for i in new if i.status == 'open' and i.due < 0]
            for i in sorted(credit_invs, key=lambda i: i.eid):
                x = i.due
                i.apps.append(('credit', None, x))
                i.paid += x
                i.status = 'paid'
                a.credit += -x
                a.post(customer_credit=x, receivable=-x)
            if credit_invs:
                pay = list({id(i): i for i in new + [i for i in a.open_invoices() if i.due > 0]}.values())
            self.consume_credit(a, pay)
            if a.method is not None:
                for i in new:
                    if i.status == 'open' and i.due > 0:
                        a.attempts.append(dict(inv=i, no=1, status='pending', sched=self.today))

    def consume_credit(self, a, invs):
        for i in sorted((i for i in invs if i.status == 'open' and i.due > 0), key=self.pay_order):
            if a.credit <= 0:
                break
            x = min(i.due, a.credit)
            i.apps.append(('credit', None, x))
            i.paid += x
            i.touched = True
            a.credit -= x
            a.post(customer_credit=x, receivable=-x)
            if i.due == 0:
                i.status = 'paid'

    # -- operations --------------------------------------------------------
    def op_subscribe(self, a):
        rng = self.rng
        price = rng.choice(['basic', 'pro', 'seat', 'setup', 'trial', 'yearly', 'weekly', 'calls'])
        qty = rng.choice([1, 2, 5]) if price in ('seat', 'calls') else 1
        anchor = None
        if rng.random() < 0.3 and PRICES[price][2][0] == 'month':
            anchor = self.today + dt.timedelta(days=rng.randint(1, 27))
        trial = None
        if rng.random() < 0.15:
            trial = rng.choice([0, 5])
        coupon = rng.choice([None, None, None] + list(COUPONS))
        if coupon and COUPONS[coupon][2] is not None and price == 'calls':
            coupon = None
        invoice_now = rng.random() < 0.7
        r = self.call("SELECT billing.subscribe(%s, %s, quantity => %s, anchor => %s, trial_days => %s, "
                      "coupon => %s, invoice_now => %s)",
                      (a.eid, self.price_ids[price], qty, anchor, trial, coupon, invoice_now))
        r = self.expect_ok('subscribe', r)
        s = Sub(r[0][0], a)
        unit, scheme, cad, usage, setup, ptrial = PRICES[price]
        t = ptrial if trial is None else trial
        s.start = self.today
        s.trial_end = self.today + dt.timedelta(days=t) if t > 0 else None
        start = s.trial_end or self.today
        s.anchor = anchor or start
        s.cad = cad
        s.nbd = start
        s.status = 'trialing' if s.trial_end else 'active'
        ieid = self.db.one("SELECT subscription_item_id FROM billing.subscription_item WHERE account_id = %s "
                           "AND subscription_id = %s", (a.eid, s.eid))
        s.items.append(Item(ieid, price, qty, self.today))
        if setup:
            s.pending.append(dict(amount=R(setup * 100), kind='setup_fee', item=ieid, period_end=None,
                                  ps=self.today, done=False))
        if coupon:
            self.model_apply_coupon(s, coupon)
        a.subs.append(s)
        if invoice_now and start <= self.today:
            self.billed_now(s, self.today, 'cycle', 'subscribe')

    def billed_now(self, s, as_of, mode, what):
        invs = self.bill(s, as_of, mode)
        self.pending_accounts = [s.acct.eid]
        self.map_invoices(invs, what)
        self.finalize(invs)

    def model_apply_coupon(self, s, code):
        dur, pct, off, n = COUPONS[code]
        until = None
        if dur != 'forever':
            n = n or 1
            hi = s.nbd
            unit, k = s.cad
            hi = s.nbd + dt.timedelta(days=k * n) if unit == 'day' else add_months(s.nbd, k * n)
            # (nbd + cadence x n in PostgreSQL's interval arithmetic: from nbd, clamped)
            ps = periods_between(s.anchor, s.cad, s.nbd, hi)
            until = ps[n - 1][1]
        s.coupon = (code, s.nbd, until)

    def op_apply_coupon(self, a):
        subs = [s for s in a.subs if s.nbd is not None]
        if not subs:
            return
        s = self.rng.choice(subs)
        code = self.rng.choice(list(COUPONS))
        running = s.coupon is not None and (s.coupon[2] is None or s.coupon[2] > s.nbd)
        replace = self.rng.random() < 0.5
        r = self.call("SELECT billing.apply_coupon(%s, %s, %s, replace => %s)", (a.eid, s.eid, code.lower(), replace))
        if running and not replace:
            self.expect_refused('apply_coupon on a running coupon', r, '55000')
            return
        self.expect_ok('apply_coupon', r)
        self.model_apply_coupon(s, code)

    def changeable(self, a):
        return [s for s in a.subs if s.status not in ('canceled', 'paused') and s.cancel_on is None]

    def op_change(self, a):
        rng = self.rng
        subs = [s for s in self.changeable(a) if len(s.current_items()) == 1 and s.current_items()[0].licensed()]
        if not subs:
            return
        s = rng.choice(subs)
        it = s.current_items()[0]
        if it.start > self.today:
            return
        proration = rng.choice(['prorate_now', 'prorate_next', 'none', 'at_period_end'])
        cad = PRICES[it.price][2]
        same_cad = [p for p in ('basic', 'pro', 'seat', 'setup') if PRICES[p][2] == cad] if cad == ('month', 1) else [it.price]
        if it.price == 'seat' and rng.random() < 0.5:
            newp, qty = 'seat', rng.choice([1, 3, 8])
        elif rng.random() < 0.2 and s.status != 'trialing' and proration != 'at_period_end':
            newp, qty = rng.choice([p for p in ('basic', 'yearly', 'weekly') if PRICES[p][2] != cad]), None
        else:
            newp, qty = rng.choice(same_cad), None
        new_cad = PRICES[newp][2] != s.cad
        if proration == 'at_period_end' and s.nbd is not None and s.nbd <= self.today:
            return  # (the cycle has not yet run today)
        r = self.call("SELECT billing.change_subscription(%s, %s, price_id => %s, quantity => %s, proration => %s)",
                      (a.eid, s.eid, self.price_ids[newp], qty, proration))
        r = self.expect_ok('change_subscription %s -> %s x %s %s' % (it.price, newp, qty, proration), r)
        nq = qty if qty is not None else it.qty
        if newp not in ('seat', 'calls'):
            nq = nq if qty is not None else it.qty
        v_d = s.nbd if proration == 'at_period_end' else self.today
        it.end = v_d
        new = Item(r[0][0], newp, nq, v_d)
        s.items.append(new)
        cycle = None
        if proration in ('prorate_now', 'prorate_next') and s.cpe is not None and s.cps <= v_d < s.cpe:
            cycle = period_containing(s.anchor, s.cad, v_d)
        if cycle is not None and newp == it.price and nq == it.qty:
            pass
        elif cycle is not None and newp == it.price and s.billed_for_period(it):
            diff = price_value(newp, nq) - price_value(it.price, it.qty)
            s.pending.append(dict(amount=prorate(diff, cycle[0], cycle[1], v_d, s.cpe), kind='proration',
                                  item=new.eid, period_end=s.cpe, ps=v_d, done=False))
        elif cycle is not None and new_cad:
            pass
        elif cycle is not None:
            if s.billed_for_period(it):
                s.pending.append(dict(amount=-prorate(price_value(it.price, it.qty), cycle[0], cycle[1], v_d, s.cpe),
                                      kind='proration', item=it.eid, period_end=s.cpe, ps=v_d, done=False))
            s.pending.append(dict(amount=prorate(price_value(newp, nq), cycle[0], cycle[1], v_d, s.cpe),
                                  kind='proration', item=new.eid, period_end=s.cpe, ps=v_d, done=False))
        if new_cad:
            if s.cpe is not None and s.cps <= v_d < s.cpe and proration != 'none' and s.billed_for_period(it):
                cyc = period_containing(s.anchor, s.cad, v_d)
                s.pending.append(dict(amount=-prorate(price_value(it.price, it.qty), cyc[0], cyc[1], v_d, s.cpe),
                                      kind='proration', item=it.eid, period_end=s.cpe, ps=v_d, done=False))
            s.anchor, s.cad, s.nbd = v_d, PRICES[newp][2], v_d
            self.billed_now(s, v_d, 'cycle', 'change of cadence')
        elif proration == 'prorate_now':
            self.billed_now(s, v_d, 'now', 'change prorate_now')

    def change_day(self, s, proration):
        """the day an add-on is added or removed (README, Changing a subscription), or None to skip"""
        if proration == 'at_period_end':
            return None if s.nbd is None or s.nbd <= self.today else s.nbd  # (the cycle has not yet run today)
        if self.today < (s.cps or s.start) or s.nbd is None or self.today > s.nbd:
            return None
        return self.today

    def op_addon(self, a):
        rng = self.rng
        subs = [s for s in self.changeable(a) if s.cad == ('month', 1)]
        if not subs:
            return
        s = rng.choice(subs)
        price = rng.choice([p for p in ('seat', 'calls') if p not in [i.price for i in s.current_items()]] or [None])
        if price is None:
            return
        qty = rng.choice([1, 2, 4]) if price == 'seat' else 1
        proration = rng.choice(['prorate_now', 'prorate_next', 'none', 'at_period_end'])
        v_d = self.change_day(s, proration)
        if v_d is None:
            return
        r = self.call("SELECT billing.add_subscription_item(%s, %s, %s, %s, proration => %s)",
                      (a.eid, s.eid, self.price_ids[price], qty, proration))
        r = self.expect_ok('add_subscription_item %s x %s %s' % (price, qty, proration), r)
        new = Item(r[0][0], price, qty, v_d)
        s.items.append(new)
        if proration in ('prorate_now', 'prorate_next') and new.licensed() and s.cpe is not None \
                and s.cps <= v_d < s.cpe:
            cyc = period_containing(s.anchor, s.cad, v_d)
            s.pending.append(dict(amount=prorate(price_value(price, qty), cyc[0], cyc[1], v_d, s.cpe),
                                  kind='proration', item=new.eid, period_end=s.cpe, ps=v_d, done=False))
        if proration == 'prorate_now':
            self.billed_now(s, v_d, 'now', 'add-on prorate_now')

    def op_remove_addon(self, a):
        rng = self.rng
        subs = [s for s in self.changeable(a)
                if len([i for i in s.current_items() if i.start <= self.today]) >= 2]
        if not subs:
            return
        s = rng.choice(subs)
        it = rng.choice([i for i in s.current_items() if i.start <= self.today])
        proration = rng.choice(['prorate_now', 'prorate_next', 'none', 'at_period_end'])
        v_d = self.change_day(s, proration)
        if v_d is None:
            return
        r = self.call("SELECT billing.remove_subscription_item(%s, %s, proration => %s)", (a.eid, it.eid, proration))
        r = self.expect_ok('remove_subscription_item %s %s' % (it.price, proration), r)
        if r[0][0] != v_d:
            raise Mismatch('remove_subscription_item: the engine ends it on %s, the model on %s' % (r[0][0], v_d))
        if proration in ('prorate_now', 'prorate_next') and it.licensed() and s.cpe is not None \
                and s.cps <= v_d < s.cpe and s.billed_for_period(it):
            cyc = period_containing(s.anchor, s.cad, v_d)
            s.pending.append(dict(amount=-prorate(price_value(it.price, it.qty), cyc[0], cyc[1], v_d, s.cpe),
                                  kind='proration', item=it.eid, period_end=s.cpe, ps=v_d, done=False))
        it.end = v_d
        if proration == 'prorate_now':
            self.billed_now(s, v_d, 'now', 'add-on removed prorate_now')

    def op_cancel(self, a):
        rng = self.rng
        subs = [s for s in a.subs if s.status != 'canceled']
        if not subs:
            return
        s = rng.choice(subs)
        at_end = rng.random() < 0.5 and s.status != 'paused' and s.cancel_on is None
        if at_end:
            r = self.call("SELECT billing.cancel_subscription(%s, %s)", (a.eid, s.eid))
            self.expect_ok('cancel at period end', r)
            s.cancel_on, s.pause_on = s.nbd, None
            return
        prorate_ = rng.random() < 0.6
        v_d = self.today
        if v_d < (s.cps or s.start) or (s.paused_on and v_d < s.paused_on) or (s.nbd and v_d > s.nbd):
            return
        r = self.call("SELECT billing.cancel_subscription(%s, %s, at_period_end => false, prorate => %s)",
                      (a.eid, s.eid, prorate_))
        self.expect_ok('cancel now', r)
        if prorate_ and s.cpe is not None and s.status != 'paused' and s.cps <= v_d < s.cpe:
            for it in s.items:
                if it.licensed() and it.start <= v_d and (it.end is None or it.end > v_d) and s.billed_for_period(it):
                    s.pending.append(dict(amount=-prorate(price_value(it.price, it.qty),
                                                          *period_containing(s.anchor, s.cad, v_d), v_d, s.cpe),
                                          kind='proration', item=it.eid, period_end=s.cpe, ps=v_d, done=False))
        for it in s.items:
            if it.end is None or it.end > v_d:
                it.end = max(it.start, v_d)
        s.status, s.canceled_on, s.cancel_on, s.pause_on, s.nbd = 'canceled', v_d, v_d, None, None
        self.billed_now(s, v_d, 'now', 'cancel now')

    def op_pause(self, a):
        subs = [s for s in a.subs if s.status not in ('canceled', 'paused') and s.cancel_on is None
                and s.pause_on is None]
        if not subs:
            return
        s = self.rng.choice(subs)
        r = self.call("SELECT billing.pause_subscription(%s, %s)", (a.eid, s.eid))
        r = self.expect_ok('pause', r)
        if r[0][0] != s.nbd:
            raise Mismatch('pause: the engine pauses from %s, the model from %s' % (r[0][0], s.nbd))
        s.pause_on = s.nbd

    def op_resume(self, a):
        subs = [s for s in a.subs if s.status == 'paused' or s.pause_on is not None]
        if not subs:
            return
        s = self.rng.choice(subs)
        r = self.call("SELECT billing.resume_subscription(%s, %s)", (a.eid, s.eid))
        self.expect_ok('resume', r)
        if s.status != 'paused':
            s.pause_on = None
            return
        s.status, s.nbd, s.paused_on = 'active', self.today, None
        self.billed_now(s, self.today, 'cycle', 'resume')

    def op_usage(self, a):
        items = [(s, i) for s in a.subs for i in s.items if not i.licensed() and i.start <= self.today
                 and (i.end is None or i.end > self.today)]
        if not items:
            return
        s, it = self.rng.choice(items)
        qty = self.rng.choice([1, 7, 40, 333])
        key = self.newkey('u')
        r = self.call("SELECT billing.record_usage(%s, %s, %s, %s)", (a.eid, it.eid, qty, key))
        self.expect_ok('record_usage', r)
        s.usage.append(dict(item=it.eid, date=self.today, qty=qty, done=False))
        if self.rng.random() < 0.2:  # the same key again: the same event, nothing new
            r2 = self.call("SELECT billing.record_usage(%s, %s, %s, %s)", (a.eid, it.eid, qty, key))
            if self.expect_ok('record_usage again', r2)[0][0] != r[0][0]:
                raise Mismatch('record_usage: the same key gave another event')

    def op_tax(self, a):
        tax = self.rng.choice(list(TAXES))
        if tax is None:
            return  # (update_account keeps a value given as NULL)
        r = self.call("SELECT billing.update_account(%s, tax_rate_id => %s)", (a.eid, self.tax_ids[tax]))
        self.expect_ok('update_account tax', r)
        a.tax = tax

    def model_payment(self, a, peid, amount, only=None):
        a.payments[peid] = dict(amount=amount, refunded=0, charged_back=False, applied=0)
        funds = amount
        applied = 0
        for i in sorted((i for i in a.open_invoices() if i.due > 0 and (only is None or i in only)),
                        key=self.pay_order):
            if funds <= 0:
                break
            disc = 0
            if a.early and self.today <= i.issue + dt.timedelta(days=a.early[1]) and \
                    not any(s == 'discount' for s, _, _ in i.apps):
                disc = min(R(Fraction(i.total * a.early[0], 100)), i.due)
            need = i.due - disc
            x = min(need, funds)
            d = disc if funds >= need else 0
            funds -= need
            if x > 0:
                i.apps.append(('payment', peid, x))
            if d > 0:
                i.apps.append(('discount', None, d))
                a.post(discounts=d, receivable=-d)
            i.paid += x + d
            i.touched = True
            applied += x
            if i.due == 0:
                i.status = 'paid'
        a.payments[peid]['applied'] = applied
        excess = amount - applied
        a.credit += excess
        a.post(cash=amount, receivable=-applied, customer_credit=-excess)
        a.cash_moves += amount

    def pay_amount(self, a):
        rng = self.rng
        owed = sum(i.due for i in a.open_invoices() if i.due > 0)
        k = rng.random()
        if owed <= 0 or k < 0.1:
            return rng.choice([100, 2500, 12345])
        if a.early and k < 0.25:
            # exactly what settles the oldest invoice with its early-payment discount
            i = min((i for i in a.open_invoices() if i.due > 0), key=self.pay_order)
            disc = 0
            if self.today <= i.issue + dt.timedelta(days=a.early[1]) and not any(s == 'discount' for s, _, _ in i.apps):
                disc = min(R(Fraction(i.total * a.early[0], 100)), i.due)
            return max(1, i.due - disc)
        if k < 0.4:
            return max(1, owed * rng.randint(1, 9) // 10)
        if k < 0.8:
            return owed
        return owed + rng.choice([1, 999, 5000])

    def op_pay(self, a):
        amount = self.pay_amount(a)
        key = self.newkey('p')
        r = self.call("SELECT billing.apply_payment(%s, %s, 'bank_transfer', idempotency_key => %s)",
                      (a.eid, amt(amount), key))
        r = self.expect_ok('apply_payment %s' % amt(amount), r)
        self.model_payment(a, r[0][0], amount)
        if self.rng.random() < 0.2:  # a retry with the same key: the same payment, nothing written
            r2 = self.expect_ok('apply_payment retry', self.call(
                "SELECT billing.apply_payment(%s, %s, 'bank_transfer', idempotency_key => %s)",
                (a.eid, amt(amount), key)))
            if r2[0][0] != r[0][0]:
                raise Mismatch('apply_payment: a retry with the same key made payment %s' % r2[0][0])

    def op_pay_concurrently(self, a):
        """two sessions pay one account at once: serialized on its credit row"""
        amounts = [self.pay_amount(a), self.pay_amount(a)]
        res = [None, None]
        other = Engine(self.args.dsn)
        other.set_clock(self.today)
        conns = [self.db, other]

        def go(k):
            try:
                res[k] = conns[k].q("SELECT billing.apply_payment(%s, %s, 'card', idempotency_key => %s)",
                                    (a.eid, amt(amounts[k]), self.newkey('cp')))[0][0]
            except psycopg2.Error as e:
                res[k] = Refused(e.pgcode, e.pgerror)
        ts = [threading.Thread(target=go, args=(k,)) for k in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        other.conn.close()
        self.ops += 2
        for k in (0, 1):
            self.expect_ok('concurrent apply_payment', res[k])
        # the lock on the credit row orders them; the payment ids follow the order
        for peid, amount in sorted(zip(res, amounts)):
            self.model_payment(a, peid, amount)

    def model_take_back(self, a, peid, amount, kind):
        p = a.payments[peid]
        applied = sum(x for i in a.invoices for s, pe, x in i.apps if s == 'payment' and pe == peid)
        from_credit = max(min(amount, p['amount'] - applied - p['refunded'], a.credit), 0)
        rest = amount - from_credit
        back = []
        left = rest
        for i in sorted((i for i in a.invoices if i.status in ('open', 'paid')), key=lambda i: -i.eid):
            if left <= 0:
                break
            paid = sum(x for s, pe, x in i.apps if s == 'payment' and pe == peid)
            if paid <= 0:
                continue
            cap = min(paid, i.cash_in())
            if cap <= 0:
                continue
            x = min(cap, left)
            back.append((i, x))
            left -= x
        if left > 0:
            return None
        for i, x in back:
            i.apps.append(('payment', peid, -x))
            i.paid -= x
            i.status = 'open'
        a.credit -= from_credit
        self.consume_credit(a, [i for i, _ in back])
        p['refunded'] += amount
        if kind == 'chargeback':
            p['charged_back'] = True
        a.post(customer_credit=from_credit, receivable=rest, cash=-amount)
        a.cash_moves -= amount
        return True

    def op_refund(self, a, kind='refund'):
        ps = [k for k, p in a.payments.items() if not p['charged_back'] and p['refunded'] < p['amount']]
        if not ps:
            return
        peid = self.rng.choice(ps)
        p = a.payments[peid]
        left = p['amount'] - p['refunded']
        amount = None if self.rng.random() < 0.4 else self.rng.randint(1, left)
        fn = 'refund_payment' if kind == 'refund' else 'record_chargeback'
        # try the model on a copy of the state first: a refusal changes nothing
        snap = self.snapshot(a)
        ok = self.model_take_back(a, peid, amount if amount is not None else left, kind)
        r = self.call("SELECT billing.%s(%s, %s, amount => %%s)" % (fn, a.eid, peid),
                      (amt(amount) if amount is not None else None,))
        if ok is None:
            self.restore(a, snap)
            self.expect_refused('%s of payment %s (%s)' % (fn, peid, amt(amount or left)), r, '55000')
        else:
            self.expect_ok('%s of payment %s (%s)' % (fn, peid, amt(amount or left)), r)

    def snapshot(self, a):
        import copy
        return copy.deepcopy({'credit': a.credit, 'ledger': a.ledger, 'cash': a.cash_moves,
                              'payments': a.payments,
                              'inv': [(i.paid, i.status, list(i.apps), i.touched) for i in a.invoices]})

    def restore(self, a, snap):
        a.credit, a.ledger, a.cash_moves, a.payments = snap['credit'], snap['ledger'], snap['cash'], snap['payments']
        for i, (paid, status, apps, touched) in zip(a.invoices, snap['inv']):
            i.paid, i.status, i.apps, i.touched = paid, status, apps, touched

    def op_refund_credit(self, a):
        if a.credit <= 0:
            return
        amount = None if self.rng.random() < 0.5 else self.rng.randint(1, a.credit)
        r = self.call("SELECT billing.refund_credit(%s, amount => %s)",
                      (a.eid, amt(amount) if amount is not None else None))
        self.expect_ok('refund_credit', r)
        x = amount if amount is not None else a.credit
        a.credit -= x
        a.post(customer_credit=x, cash=-x)
        a.cash_moves -= x

    def op_credit_note(self, a):
        invs = [i for i in a.invoices if i.status in ('open', 'paid') and i.total > 0]
        if not invs:
            return
        i = self.rng.choice(invs)
        room = i.total - sum(x for x, _ in i.notes)
        if room <= 0:
            return
        method = self.rng.choice(['reduce_due', 'credit_balance', 'refund'])
        amount = self.rng.randint(1, room)
        if method == 'reduce_due':
            if i.due <= 0:
                return
            amount = min(amount, i.due)
        if method == 'refund':
            if i.cash_in() <= 0:
                return
            amount = min(amount, i.cash_in())
        r = self.call("SELECT billing.issue_credit_note(%s, %s, %s, %s)", (a.eid, i.eid, amt(amount), method))
        self.expect_ok('issue_credit_note %s %s on invoice %s' % (amt(amount), method, i.eid), r)
        net, tax = allocate(amount, [i.total - i.tax, i.tax])
        i.notes.append((amount, method))
        i.touched = True
        if method == 'reduce_due':
            i.apps.append(('credit_note', None, amount))
            i.paid += amount
            if i.due == 0:
                i.status = 'paid'
            a.post(discounts=net, tax_payable=tax, receivable=-amount)
        elif method == 'credit_balance':
            # README: the credit pays the account's open invoices at once,
            # oldest due first
            a.credit += amount
            a.post(discounts=net, tax_payable=tax, customer_credit=-amount)
            self.consume_credit(a, a.open_invoices())
        else:
            a.post(discounts=net, tax_payable=tax, cash=-amount)
            a.cash_moves -= amount

    def op_void(self, a):
        invs = [i for i in a.invoices if i.status == 'open' and not i.touched and not i.apps and not i.notes]
        if not invs:
            return
        i = self.rng.choice(invs)
        r = self.call("SELECT billing.void_invoice(%s, %s, 'sim')", (a.eid, i.eid))
        self.expect_ok('void_invoice %s' % i.eid, r)
        i.status = 'void'
        a.post(revenue=i.total - i.tax, tax_payable=i.tax, receivable=-i.total)

    def model_write_off(self, a, i):
        i.status = 'uncollectible'
        a.post(bad_debt=i.due, receivable=-i.due)

    def op_write_off(self, a):
        invs = a.open_invoices()
        if not invs:
            return
        i = self.rng.choice(invs)
        r = self.call("SELECT billing.write_off_invoice(%s, %s, 'sim')", (a.eid, i.eid))
        self.expect_ok('write_off_invoice %s' % i.eid, r)
        self.model_write_off(a, i)

    def op_installments(self, a):
        invs = [i for i in a.open_invoices() if i.due > 1 and i.plan is None]
        if not invs:
            return
        i = self.rng.choice(invs)
        n = self.rng.choice([2, 3, 4])
        r = self.call("SELECT due_date, amount::text FROM billing.create_installment_plan(%s, %s, %s, '1 month')",
                      (a.eid, i.eid, n))
        r = self.expect_ok('create_installment_plan on %s' % i.eid, r)
        parts = split(i.due, n)
        # first_due NULL: the invoice's due date (README: dated installments)
        got = [(d, cents(x)) for d, x in r]
        want = [(add_months(i.due_date, k), parts[k]) for k in range(n)]
        if got != want:
            raise Mismatch('create_installment_plan on invoice %s: the engine %s, the model %s' % (i.eid, got, want))
        i.plan = (want, i.due)

    def op_payment_method(self, a):
        if a.method is not None:
            r = self.call("SELECT billing.remove_payment_method(%s, %s)", (a.eid, a.method))
            self.expect_ok('remove_payment_method', r)
            a.method = None
            for x in a.attempts:
                if x['status'] == 'pending':
                    x['status'] = 'canceled'
        else:
            r = self.call("SELECT billing.add_payment_method(%s, 'direct_debit', %s)", (a.eid, self.newkey('tok')))
            a.method = self.expect_ok('add_payment_method', r)[0][0]

    def collect(self):
        """a collection worker: claims what is due, the provider answers at random"""
        r = self.call("SELECT account_id, attempt_id, invoice_id, attempt_no, amount::text "
                      "FROM billing.claim_collection_attempts('sim-worker', 10000)")
        got = self.expect_ok('claim_collection_attempts', r)
        want = []
        for a in self.accts:
            for x in a.attempts:
                if x['status'] == 'pending' and x['sched'] <= self.today:
                    i = x['inv']
                    if i.status == 'open' and i.due > 0:
                        x['status'], x['amount'] = 'processing', i.due
                        want.append((a.eid, i.eid, x['no'], i.due, x))
                    else:
                        x['status'] = 'canceled'
        g = sorted((r[0], r[2], r[3], cents(r[4])) for r in got)
        w = sorted(t[:4] for t in want)
        if g != w:
            raise Mismatch('claim_collection_attempts: claimed (account, invoice, attempt, amount) %s, the model %s'
                           % ([(x[0], x[1], x[2], amt(x[3])) for x in g], [(x[0], x[1], x[2], amt(x[3])) for x in w]))
        ids = {(r[0], r[2], r[3]): r[1] for r in got}
        for aeid, ieid, no, amount, x in want:
            a = next(y for y in self.accts if y.eid == aeid)
            ok = self.rng.random() < 0.6
            r = self.call("SELECT billing.report_collection_result(%s, %s, %s, failure_code => %s)",
                          (aeid, ids[(aeid, ieid, no)], ok, None if ok else 'card_declined'))
            r = self.expect_ok('report_collection_result', r)
            if ok:
                x['status'] = 'succeeded'
                self.model_payment(a, r[0][0], amount, only=[x['inv']] if x['inv'].status == 'open' else [])
            else:
                x['status'] = 'failed'
                if no <= len(RETRY_DAYS) and a.method is not None:
                    a.attempts.append(dict(inv=x['inv'], no=no + 1, status='pending',
                                           sched=self.today + dt.timedelta(days=RETRY_DAYS[no - 1])))

    # -- the cycle and dunning --------------------------------------------
    def run_cycle(self):
        # what the model expects, and the engine's preview before the cycle
        due_subs = [s for a in self.accts for s in a.subs if s.nbd is not None and s.nbd <= self.today]
        previews = {}
        for a in {s.acct for s in due_subs}:
            rows = self.db.q("SELECT subscription_id, bill_date, kind, amount::text, period_start, period_end "
                             "FROM billing.preview_invoice(%s) WHERE bill_date <= %s", (a.eid, self.today))
            for r in rows:
                previews.setdefault(r[0], []).append((r[1], r[2], cents(r[3]), r[4], r[5]))
        invs = []
        for s in due_subs:
            invs += self.bill(s, self.today, 'cycle')
        # two sessions share the run when the order of their commits cannot
        # change who gets an account's credit (README: the cycle, SKIP LOCKED)
        per_acct = {}
        for i in invs:
            per_acct.setdefault(i.acct, set()).add(i.sub.eid)
        ambiguous = any(len(subs) > 1 and (a.credit > 0 or any(i.total < 0 for i in invs if i.acct is a))
                        for a, subs in per_acct.items())
        concurrent = not ambiguous and self.rng.random() < 0.4
        if concurrent:
            other = Engine(self.args.dsn)
            other.set_clock(self.today)
            errs = []

            def go(db):
                try:
                    db.q("CALL billing.run_cycle(batch_size => %s)", (self.rng_batch,))
                except psycopg2.Error as e:
                    errs.append(e)
            self.rng_batch = self.rng.choice([1, 2, 5])
            ts = [threading.Thread(target=go, args=(db,)) for db in (self.db, other)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            other.conn.close()
            if errs:
                raise Mismatch('run_cycle in two sessions failed: %s' % errs[0])
        else:
            r = self.call("CALL billing.run_cycle()")
            self.expect_ok('run_cycle', r)
        errors = self.db.one("SELECT coalesce(jsonb_agg(e), '[]')::text FROM billing.cycle_run r, "
                             "jsonb_array_elements(r.errors) e WHERE r.as_of IS NULL AND r.at::date = %s",
                             (self.today,))
        if errors != '[]':
            raise Mismatch('run_cycle logged errors: %s' % errors)
        self.pending_accounts = []
        self.map_invoices(invs, 'run_cycle%s' % (' (two sessions)' if concurrent else ''))
        self.finalize(invs)
        # preview = cycle: the lines previewed are the lines the cycle made
        made = {}
        for i in invs:
            eng = self.db.q("SELECT kind, amount::text, period_start, period_end FROM billing.invoice_line "
                            "WHERE account_id = %s AND invoice_id = %s", (i.acct.eid, i.eid))
            made.setdefault(i.sub.eid, []).extend((i.boundary, k, cents(x), ps, pe) for k, x, ps, pe in eng)
        for sid in set(made) | set(previews):
            if sorted(made.get(sid, []), key=str) != sorted(previews.get(sid, []), key=str):
                raise Mismatch('preview = cycle, subscription %s: previewed %s, the cycle made %s' % (
                    sid, sorted(previews.get(sid, []), key=str), sorted(made.get(sid, []), key=str)))
        return concurrent

    def pay_order(self, i):
        """payments and credit pay what is due soonest: by the day dunning goes
        by (an installment plan's first uncovered installment), then invoice"""
        return (self.dunning_ref(i)[0], i.eid)

    def dunning_ref(self, i):
        """the due date dunning goes by, and what is asked (README: installment plans)"""
        if i.plan is None:
            return i.due_date, i.due
        inst, at_plan = i.plan
        covered = at_plan - i.due
        for d, x in inst:
            if covered >= x:
                covered -= x
                continue
            later = sum(y for dd, y in inst if dd > d)
            return d, i.due - later
        return inst[-1][0], i.due

    def run_dunning(self):
        # what each account and invoice owed when dunning looked (a write-off
        # the same run may take after a reminder clears it)
        self.owed_before = {a.eid: a.owes() for a in self.accts}
        self.due_before = {i.eid: i.due for a in self.accts for i in a.open_invoices()}
        r = self.call("CALL billing.run_dunning()")
        self.expect_ok('run_dunning', r)
        fees = []
        for a in self.accts:
            for i in sorted(a.open_invoices(), key=lambda i: (i.due_date, i.eid)):
                if i.due <= 0:
                    continue
                ref, asked = self.dunning_ref(i)
                due_steps = [(off, act, name) for off, act, name in STEPS
                             if ref + dt.timedelta(days=off) <= self.today and name not in i.steps
                             and not (act == 'late_fee' and i.reason == 'late_fee')]
                if not due_steps:
                    continue
                for off, act, name in due_steps:
                    i.steps.add(name)
                reminders = [x for x in due_steps if x[1] == 'remind']
                if reminders:
                    a.reminders.add((i.eid, reminders[-1][2]))
                if any(x[1] == 'late_fee' for x in due_steps):
                    fee = R(min(FEE[2], FEE[0] + FEE[1] * Fraction(asked, 100) / 100) * 100)
                    if fee > 0:
                        fees.append(Inv(a, None, 'late_fee', self.today, a.terms, [('late_fee', fee, None, None)],
                                        self.today, False))
                        fees[-1].fee_for = i
                if any(x[1] == 'write_off' for x in due_steps):
                    self.model_write_off(a, i)
        if fees:
            rows = self.db.q("SELECT account_id, invoice_id, (metadata->>'late_fee_for')::bigint FROM billing.invoice "
                             "WHERE billing_reason = 'late_fee' AND invoice_id <> ALL(%s) ORDER BY invoice_id",
                             (list(self.seen_invoices) or [0],))
            want = sorted((f.acct.eid, f.fee_for.eid) for f in fees)
            got = sorted((r[0], r[2]) for r in rows)
            if want != got:
                raise Mismatch('run_dunning: late fees for (account, invoice) %s, the model %s' % (got, want))
            by = {(r[0], r[2]): r[1] for r in rows}
            for f in fees:
                f.eid = by[(f.acct.eid, f.fee_for.eid)]
                self.seen_invoices.add(f.eid)
                f.acct.invoices.append(f)
            self.finalize(fees)
        else:
            rows = self.db.q("SELECT invoice_id FROM billing.invoice WHERE billing_reason = 'late_fee' "
                             "AND invoice_id <> ALL(%s)", (list(self.seen_invoices) or [0],))
            if rows:
                raise Mismatch('run_dunning made late-fee invoices %s, the model none' % [r[0] for r in rows])

    # -- the daily comparison ---------------------------------------------
    def compare(self):
        db = self.db
        bad = db.q("SELECT invariant, detail FROM billing.check_invariants() LIMIT 3")
        if bad:
            raise Mismatch('check_invariants: %s' % bad)
        inv = {}
        for r in db.q("SELECT account_id, invoice_id, status, total::text, amount_paid::text, amount_due::text, "
                      "due_date, issue_date FROM billing.invoice"):
            inv[r[1]] = r
        lines = {}
        for r in db.q("SELECT invoice_id, kind, amount::text FROM billing.invoice_line"):
            lines.setdefault(r[0], []).append((r[1], cents(r[2])))
        credit = {r[0]: cents(r[1]) for r in db.q("SELECT account_id, balance::text FROM billing.account_credit")}
        ledger = {}
        for r in db.q("SELECT account_id, ledger_account, billing.sum(amount)::text FROM billing.ledger_entry "
                      "GROUP BY 1, 2"):
            ledger[(r[0], r[1])] = cents(r[2])
        model_ids = set()
        for a in self.accts:
            for i in a.invoices:
                model_ids.add(i.eid)
                e = inv.get(i.eid)
                want = (i.status, i.total, i.paid, i.due if i.status != 'paid' or i.total >= 0 else 0, i.due_date)
                if i.status in ('void',):
                    want = (i.status, i.total, i.paid, None, i.due_date)
                got = (e[2], cents(e[3]), cents(e[4]), cents(e[5]), e[6])
                if i.status == 'void':
                    got = (got[0], got[1], got[2], None, got[4])
                if got != want:
                    raise Mismatch('invoice %s of account %s (%s, issued %s): engine status/total/paid/due/due_date '
                                   '%s, model %s' % (i.eid, a.eid, i.reason, i.issue, self.fmt(got), self.fmt(want)))
                ml = sorted((k, x) for k, x, _, _ in i.lines)
                el = sorted(lines.get(i.eid, []))
                if ml != el:
                    raise Mismatch('invoice %s of account %s (%s): engine lines %s, model %s' % (
                        i.eid, a.eid, i.reason, [(k, amt(x)) for k, x in el], [(k, amt(x)) for k, x in ml]))
            if credit.get(a.eid, 0) != a.credit:
                raise Mismatch('account %s: engine credit %s, model %s' % (a.eid, amt(credit.get(a.eid, 0)),
                                                                          amt(a.credit)))
            for k, v in a.ledger.items():
                if ledger.get((a.eid, k), 0) != v:
                    raise Mismatch('account %s: ledger %s is %s, the model %s' % (
                        a.eid, k, amt(ledger.get((a.eid, k), 0)), amt(v)))
            # cash = payments - refunds - chargebacks (and credit and credit-note refunds)
            if ledger.get((a.eid, 'cash'), 0) != a.cash_moves:
                raise Mismatch('account %s: cash %s, payments less refunds %s' % (
                    a.eid, amt(ledger.get((a.eid, 'cash'), 0)), amt(a.cash_moves)))
            # conservation: every account's entries sum to zero
            tot = sum(v for (acc, _), v in ledger.items() if acc == a.eid)
            if tot != 0:
                raise Mismatch('account %s: ledger entries sum to %s' % (a.eid, amt(tot)))
        rem = {}
        for r in db.q("SELECT account_id, (payload->>'invoice_id')::bigint, payload->'step'->>'name', created_at::date "
                      "FROM billing.outbox WHERE event_type = 'dunning.reminder'"):
            rem.setdefault(r[0], set()).add((r[1], r[2]))
            if r[3] == self.today:
                # no reminder to an account that owes nothing (when dunning ran)
                if self.due_before.get(r[1], 0) <= 0 or self.owed_before[r[0]] <= 0:
                    raise Mismatch('dunning reminded account %s (invoice %s, step %s) that owed nothing: invoice due '
                                   '%s, the account owed %s on balance' % (
                                       r[0], r[1], r[2], amt(self.due_before.get(r[1], 0)),
                                       amt(self.owed_before[r[0]])))
        for a in self.accts:
            if rem.get(a.eid, set()) != a.reminders:
                raise Mismatch('account %s: reminders (invoice, step) %s, model %s' % (
                    a.eid, sorted(rem.get(a.eid, set())), sorted(a.reminders)))
        extra = set(inv) - model_ids
        if extra:
            raise Mismatch('the engine has invoices the model does not: %s' % sorted(extra))

    @staticmethod
    def fmt(t):
        return tuple(amt(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in t)

    # -- the day -----------------------------------------------------------
    OPS = [('subscribe', 8), ('change', 5), ('cancel', 2), ('pause', 1), ('resume', 2), ('apply_coupon', 1),
           ('usage', 6), ('tax', 1), ('pay', 10), ('pay_concurrently', 1), ('refund', 2), ('chargeback', 1),
           ('refund_credit', 1), ('credit_note', 2), ('void', 1), ('write_off', 1), ('installments', 1),
           ('payment_method', 1), ('addon', 2), ('remove_addon', 1)]

    def day(self):
        names = [n for n, w in self.OPS for _ in range(w)]
        for a in self.accts:
            if self.rng.random() < self.args.activity:
                for _ in range(self.rng.randint(1, 2)):
                    op = self.rng.choice(names)
                    if op == 'chargeback':
                        self.op_refund(a, 'chargeback')
                    else:
                        getattr(self, 'op_' + op)(a)
        self.run_cycle()
        self.collect()
        self.run_dunning()
        self.compare()

    def run(self):
        a = self.args
        self.today = D(2026, 1, 1) + dt.timedelta(days=(a.seed * 37) % 900)
        start = self.today
        self.setup()
        self.pending_accounts = []
        for k in range(a.days):
            self.today = start + dt.timedelta(days=k)
            self.db.set_clock(self.today)
            try:
                self.day()
            except (Mismatch, Exception) as e:
                if not isinstance(e, Mismatch):
                    import traceback
                    traceback.print_exc()
                print('SIM FAILED seed %d day %d (%s): %s' % (a.seed, k, self.today, e))
                for d, sql, args in self.log[-8:]:
                    print('   last calls: %s %s %s' % (d, sql, args))
                print('reproduce: make sim SEED=%d DAYS=%d ACCOUNTS=%d' % (a.seed, a.days, a.accounts))
                return 1
        n_inv = sum(len(x.invoices) for x in self.accts)
        print('sim seed %d: %d days from %s, %d accounts, %d calls, %d invoices: ok' % (
            a.seed, a.days, start, a.accounts, self.ops, n_inv))
        return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--days', type=int, default=60)
    p.add_argument('--accounts', type=int, default=10)
    p.add_argument('--activity', type=float, default=0.5, help='chance an account acts on a day')
    p.add_argument('--dsn', default='')
    args = p.parse_args()
    sys.exit(Sim(args).run())


if __name__ == '__main__':
    main()

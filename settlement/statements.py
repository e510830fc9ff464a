"""A brand's settlement statement of one window, rendered as CSV (for machines) and PDF (for people). Both are
made from the same StatementData and are byte-for-byte deterministic, so the platform's signature over them can
be checked against a statement rendered again."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from fpdf import FPDF

from alliance.decimals import plain


@dataclass
class Line:
    """The brand's flows with one counterparty in the window."""

    counterparty: str
    conversions_out: int = 0
    points_out: int = 0  # the brand's points its members converted into the counterparty's
    paid: Decimal = Decimal(0)  # gross value of those: the brand pays it
    fees: Decimal = Decimal(0)  # within paid: the operator's
    conversions_in: int = 0
    points_in: int = 0  # the brand's points issued for the counterparty's converted into them
    received: Decimal = Decimal(0)  # net value of those: the brand receives it

    @property
    def net(self) -> Decimal:
        return self.received - self.paid


@dataclass
class AdjustmentLine:
    counterparty: str  # a brand's code, or "operator"
    amount: Decimal  # + the brand receives it
    reason: str


@dataclass
class StatementData:
    brand: str
    brand_name: str
    window_id: int
    business_date: date
    cutoff: datetime
    currency: str
    version: int
    lines: list[Line]
    adjustments: list[AdjustmentLine]
    paid_out: Decimal
    fees: Decimal
    received: Decimal
    adjustments_total: Decimal
    net: Decimal
    net_fen: int
    opening_fen: int
    bank_ref: str | None
    paid_at: datetime | None
    notes: list[str] = field(default_factory=lambda: [
        "Positions are what the brand receives (+) or pays (-).",
        "Each amount in fen is the exact position rounded half away from zero.",
        "Opening: unpaid positions of earlier windows. Closing: opening + this window.",
    ])

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + self.net_fen


def yuan(fen: int) -> str:
    """An amount in fen as a decimal of the currency: -1234 -> -12.34."""
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _decimal(value: Decimal) -> str:
    return str(plain(value))


def _summary(data: StatementData) -> list[tuple[str, str]]:
    return [
        ("brand", f"{data.brand} ({data.brand_name})"),
        ("window", f"{data.window_id}, business date {data.business_date.isoformat()}"),
        ("cut-off", data.cutoff.isoformat()),
        ("currency", data.currency),
        ("statement version", str(data.version)),
        ("paid out (gross)", _decimal(data.paid_out)),
        ("fees (within paid out)", _decimal(data.fees)),
        ("received (net)", _decimal(data.received)),
        ("adjustments", _decimal(data.adjustments_total)),
        ("position", _decimal(data.net)),
        ("position (fen)", str(data.net_fen)),
        ("opening position", yuan(data.opening_fen)),
        ("this window", yuan(data.net_fen)),
        ("closing position", yuan(data.closing_fen)),
        ("bank reference", data.bank_ref or "(not paid yet)"),
        ("paid at", data.paid_at.isoformat() if data.paid_at else ""),
    ]


LINE_HEADER = ["counterparty", "conversions out", "points out", "paid", "fees", "conversions in", "points in",
               "received", "net"]


def render_csv(data: StatementData) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["statement", "alliance settlement"])
    writer.writerows(_summary(data))
    writer.writerow([])
    writer.writerow(LINE_HEADER)
    for line in data.lines:
        writer.writerow([line.counterparty, line.conversions_out, line.points_out, _decimal(line.paid),
                         _decimal(line.fees), line.conversions_in, line.points_in, _decimal(line.received),
                         _decimal(line.net)])
    if data.adjustments:
        writer.writerow([])
        writer.writerow(["adjustment with", "amount", "reason"])
        for adjustment in data.adjustments:
            writer.writerow([adjustment.counterparty, _decimal(adjustment.amount), adjustment.reason])
    writer.writerow([])
    for note in data.notes:
        writer.writerow(["note", note])
    return out.getvalue().encode()


def render_pdf(data: StatementData) -> bytes:
    pdf = FPDF(orientation="landscape", format="A4")
    # Fixed metadata: the same statement renders to the same bytes, whenever it is rendered.
    pdf.set_creation_date(data.cutoff)
    pdf.set_title(f"Settlement statement {data.brand} {data.business_date.isoformat()}")
    pdf.set_author("Alliance")
    pdf.set_creator("Alliance")
    pdf.set_producer("Alliance")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Settlement statement - {data.brand_name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    for label, value in _summary(data):
        pdf.cell(50, 5, _latin1(label))
        pdf.cell(0, 5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _table(pdf, LINE_HEADER, [
        [line.counterparty, str(line.conversions_out), f"{line.points_out:,}", _decimal(line.paid),
         _decimal(line.fees), str(line.conversions_in), f"{line.points_in:,}", _decimal(line.received),
         _decimal(line.net)] for line in data.lines])
    if data.adjustments:
        pdf.ln(4)
        _table(pdf, ["adjustment with", "amount", "reason"],
               [[a.counterparty, _decimal(a.amount), a.reason[:90]] for a in data.adjustments], widths=[40, 30, 190],
               text_columns=frozenset({0, 2}))
    pdf.ln(4)
    pdf.set_font("helvetica", "I", 8)
    for note in data.notes:
        pdf.cell(0, 4, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _table(pdf: FPDF, header: list[str], rows: list[list[str]], widths: list[int] | None = None,
           text_columns: frozenset[int] = frozenset({0})) -> None:
    """Numbers right-aligned; the text columns left."""
    widths = widths or [40] + [29] * (len(header) - 1)
    pdf.set_font("helvetica", "B", 8)
    for width, title in zip(widths, header, strict=True):
        pdf.cell(width, 6, _latin1(title), border=1)
    pdf.ln()
    pdf.set_font("helvetica", size=8)
    for row in rows:
        for i, (width, value) in enumerate(zip(widths, row, strict=True)):
            pdf.cell(width, 5, _latin1(value), border=1, align="L" if i in text_columns else "R")
        pdf.ln()


def _latin1(text: str) -> str:
    """The PDF's core font speaks Latin-1: anything else becomes '?' rather than failing the statement."""
    return text.encode("latin-1", "replace").decode("latin-1")

"""The catalog of the planner-vs-loop benchmark: the example orders tools plus five more.

The benchmark's 10 steps call 10 different tools. Five come from
:mod:`airflow_claude.examples.orders` (``query_orders``, ``check_quality``,
``aggregate_revenue``, ``write_report``, ``notify``); five are added here, deterministic and
in the same style: ``clean_orders``, ``daily_revenue``, ``detect_anomalies``,
``top_products`` and ``archive_rows`` (mutating: writes a CSV under the demo folder,
atomically). The catalog also carries every other Python tool of the example catalog, such
as the compensating tools of ``write_report`` and ``notify``, which a catalog must hold;
``run_sql`` is left out: it is an operator tool and needs a running Airflow task.
"""

from __future__ import annotations

import csv
import hashlib
import io
import statistics
from typing import Literal

from pydantic import BaseModel, Field

from airflow_claude.catalog import Catalog, PythonTool, ToolContext, python_tool
from airflow_claude.examples import orders
from airflow_claude.examples.orders import Order, Orders, demo_dir


class Point(BaseModel):
    day: str
    orders: int
    revenue: float


class Series(BaseModel):
    points: list[Point]
    days: int


class Anomaly(BaseModel):
    day: str
    revenue: float
    z: float
    direction: Literal["high", "low"]


class Anomalies(BaseModel):
    mean: float
    stdev: float
    threshold: float
    anomalies: list[Anomaly]


class ProductStat(BaseModel):
    product: str
    orders: int
    units: int
    revenue: float
    share: float = Field(description="Share of the total revenue, 0..1.")


class TopProducts(BaseModel):
    products: list[ProductStat]
    total_revenue: float


class ArchiveFile(BaseModel):
    path: str
    rows: int
    bytes: int
    sha256: str


@python_tool(max_timeout_seconds=120)
def clean_orders(rows: list[Order], required_fields: list[str] | None = None) -> Orders:
    """Drop duplicate orders (same id) and rows missing a required field (default: region, product)."""
    required = required_fields or ["region", "product"]
    seen: set[int] = set()
    kept: list[Order] = []
    for row in rows:
        if row.id in seen or any(getattr(row, name, None) in (None, "") for name in required):
            continue
        seen.add(row.id)
        kept.append(row)
    return Orders(rows=kept, count=len(kept))


@python_tool(max_timeout_seconds=120)
def daily_revenue(rows: list[Order]) -> Series:
    """Orders and revenue (quantity x unit price) per order date, oldest first."""
    days: dict[str, Point] = {}
    for row in rows:
        point = days.setdefault(row.order_date, Point(day=row.order_date, orders=0, revenue=0.0))
        point.orders += 1
        point.revenue = round(point.revenue + row.quantity * row.unit_price, 2)
    points = [days[d] for d in sorted(days)]
    return Series(points=points, days=len(points))


@python_tool(max_timeout_seconds=120)
def detect_anomalies(points: list[Point], threshold: float = 2.0) -> Anomalies:
    """Flag days whose revenue is more than ``threshold`` standard deviations from the mean."""
    values = [p.revenue for p in points]
    mean = statistics.fmean(values) if values else 0.0
    stdev = statistics.pstdev(values) if len(values) > 1 else 0.0
    found = []
    for point in points:
        z = (point.revenue - mean) / stdev if stdev else 0.0
        if abs(z) >= threshold:
            found.append(
                Anomaly(day=point.day, revenue=point.revenue, z=round(z, 3), direction="high" if z > 0 else "low")
            )
    return Anomalies(mean=round(mean, 2), stdev=round(stdev, 2), threshold=threshold, anomalies=found)


@python_tool(max_timeout_seconds=120)
def top_products(rows: list[Order], limit: int = Field(3, ge=1, le=50)) -> TopProducts:
    """The products with the most revenue, with their orders, units and share of the total."""
    stats: dict[str, ProductStat] = {}
    for row in rows:
        stat = stats.setdefault(row.product, ProductStat(product=row.product, orders=0, units=0, revenue=0.0, share=0))
        stat.orders += 1
        stat.units += row.quantity
        stat.revenue = round(stat.revenue + row.quantity * row.unit_price, 2)
    total = round(sum(s.revenue for s in stats.values()), 2)
    for stat in stats.values():
        stat.share = round(stat.revenue / total, 4) if total else 0.0
    ranked = sorted(stats.values(), key=lambda s: (-s.revenue, s.product))[:limit]
    return TopProducts(products=ranked, total_revenue=total)


@python_tool(side_effects="mutating", max_retries=5, default_retries=2)
def archive_rows(
    rows: list[Order],
    context: ToolContext,
    name: str = Field(pattern=r"^[a-z0-9_-]{1,64}$", description="File name without extension."),
) -> ArchiveFile:
    """Archive rows as a CSV file in the demo archive folder (atomically; a retry rewrites the same file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(Order.model_fields))
    for row in rows:
        writer.writerow([getattr(row, field) for field in Order.model_fields])
    text = buffer.getvalue()
    folder = demo_dir() / "archive"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.csv"
    scratch = target.with_suffix(f".{context.idempotency_key}.tmp")
    scratch.write_text(text)
    scratch.replace(target)
    data = text.encode()
    return ArchiveFile(path=str(target), rows=len(rows), bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


#: The five tools added here; the plan's other five steps use the example catalog's tools.
ADDED_TOOLS: list[PythonTool] = [clean_orders, daily_revenue, detect_anomalies, top_products, archive_rows]
EXAMPLE_TOOLS: list[PythonTool] = [tool for tool in orders.catalog.values() if isinstance(tool, PythonTool)]

catalog = Catalog([*EXAMPLE_TOOLS, *ADDED_TOOLS], name="orders10")

"""Small URL helpers: hide credentials, whether a port is taken, the MLflow UI's runs page.

Every URL that salsweep prints or logs (Optuna storage, MLflow tracking URI, server
address) goes through :func:`redact_url` first, so a password never reaches a terminal,
a log file or an MLflow tag.

The runs page of MLflow 3.17's UI (its JS bundle, read for this) takes from the address:

- ``workflowType=machine_learning``: the model-training layout (else the one the browser
  keeps under the local-storage key ``mlflow.workflowType_v1``, by default the GenAI one;
  see studies.tracking.ui_app). The UI's own links drop it: every address salsweep
  writes carries it (:data:`TRAINING_LAYOUT`), runs table, run page and artifacts alike;
- ``viewStateShareKey=KEY``: a view stored in the experiment tag
  ``mlflow.sharedViewState.KEY``, JSON with search facets (``orderByKey``, ``orderByAsc``,
  ``searchFilter`` ...) and table state (``selectedColumns``, ``columnOrder``, ``groupBy``
  ...; ``runsExpanded`` and ``runsPinned`` are not taken from it). It is ignored when the
  address already carries a search facet. Column keys read ``params.`loss.lambda_sg```,
  ``metrics.`val/abs_rel```, ``tags.`salsweep.label```, ``attributes.`Source```.

Child runs fold under their parent only while the table is ordered by start time and
unfiltered: ordered by a metric it lists every run flat, so a view sorted by the objective
shows the trials without a click (the parent run, without the metric, comes last).

The same view holds the Chart tab's layout (:func:`charts_view_state`): ``compareRunSections``
(``{uuid, name, display, isReordered, deleted, isGenerated}``), ``compareRunCharts`` (cards
as the bundle's chart classes build them: ``type`` LINE or BAR, ``uuid``,
``metricSectionId``, ``metricKey``, a LINE's ``selectedMetricKeys`` ...) and
``isAccordionReordered``. The UI keeps the given cards and sections in their order and adds
a card for every other metric, in a section named by its prefix (``val``, ``train``) after
them (its ``updateChartAndSectionConfigs``); without ``isAccordionReordered`` it would sort
the sections by name. Without any cards it draws one per metric, alphabetically.
"""

from __future__ import annotations

import re
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "SHARED_VIEW_TAG_PREFIX",
    "TRAINING_LAYOUT",
    "ChartCard",
    "Column",
    "charts_view_state",
    "error_line",
    "port_in_use",
    "redact_text",
    "redact_url",
    "run_page_url",
    "runs_page_url",
    "runs_view_state",
    "sweep_view_state",
]

MASK = "***"
# Experiment tag prefix of a view that the UI opens from ``viewStateShareKey``.
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
# The UI's default width (100 px) cuts names such as "loss.num_scales" and Optuna's floats
# (17 significant digits); 160 px shows those at the table's 13 px font.
MIN_COLUMN_PX = 160
MAX_COLUMN_PX = 320

# scheme://[user[:password]@]rest. The credentials run to the LAST '@' before any '?' or
# '#': a password may contain '/', ':' and even an unescaped '@'. When a URL is ambiguous
# (an '@' in a path) this masks too much, never too little.
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<cred>[^?#]*)@")
# Credentials passed as query parameters (libpq's ?password=, tokens in HTTP URLs).
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|token|access_token|api_key|apikey|secret)=)"
    r"(?P<value>[^&;#]*)",
    re.IGNORECASE,
)
_HTTP = ("http://", "https://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
# How long an error's one line may be.
ERROR_LINE_LIMIT = 300


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``.

    ``postgresql+psycopg2://alice:s3cret@db:5432/optuna`` ->
    ``postgresql+psycopg2://alice:***@db:5432/optuna``. The user name of a database URL
    is kept (it helps to tell which account failed); in an HTTP(S) URL a lone user
    part (``https://TOKEN@host``) is usually a token and is masked as a whole. URLs
    without credentials come back unchanged. Works on unparsable text too.
    """
    match = _USERINFO.match(url)
    if match is not None:
        scheme = match["scheme"]
        user, colon, _password = match["cred"].partition(":")
        if colon:
            userinfo = f"{user}:{MASK}" if user else MASK
        elif scheme.lower() in _HTTP and user:
            userinfo = MASK
        else:
            userinfo = user
        url = f"{scheme}{userinfo}@{url[match.end() :]}"
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{MASK}", url)


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden (see :func:`redact_url`)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def _password(url: str) -> str | None:
    match = _USERINFO.match(url)
    if match is None:
        return None
    _user, colon, password = match["cred"].partition(":")
    return password if colon and password else None


def error_line(error: BaseException | str, *, secret_of: str | None = None) -> str:
    """How salsweep shows an error in one line: the first non-empty line of its message
    (an exception's ``message`` attribute where it has one, else its text, else its type's
    name), every URL in it with its credentials hidden, the password of the URL
    ``secret_of`` hidden wherever a driver's message repeats it, at most
    ``ERROR_LINE_LIMIT`` characters."""
    if isinstance(error, BaseException):
        fallback = type(error).__name__
        text = str(getattr(error, "message", None) or error)
    else:
        fallback, text = "", error
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), fallback)
    line = redact_text(line)
    password = None if secret_of is None else _password(secret_of)
    if password:
        for form in {password, urllib.parse.unquote(password)}:
            line = line.replace(form, MASK)
    return line if len(line) <= ERROR_LINE_LIMIT else line[: ERROR_LINE_LIMIT - 3] + "..."


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because another socket holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same option uvicorn sets, so a port in TIME_WAIT after a stop counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


#: The address parameter of the model-training layout, on every UI address salsweep writes.
TRAINING_LAYOUT = {"workflowType": "machine_learning"}


def runs_page_url(tracking_uri: str, experiment_id: str, view_key: str | None = None) -> str:
    """The MLflow UI's runs table of an experiment in the model-training layout
    (credentials hidden): ``<server>/#/experiments/<id>/runs?workflowType=machine_learning``,
    plus ``&viewStateShareKey=<view_key>`` to open the view stored under that key."""
    query = dict(TRAINING_LAYOUT)
    if view_key is not None:
        query["viewStateShareKey"] = view_key
    return _ui_url(tracking_uri, f"experiments/{experiment_id}/runs", query)


def run_page_url(
    tracking_uri: str, experiment_id: str, run_id: str, artifact: str | None = None
) -> str:
    """A run's page in the model-training layout (credentials hidden):
    ``<server>/#/experiments/<id>/runs/<run>?workflowType=machine_learning``; with
    ``artifact`` (a path in the run's artifacts, ``""`` for their root), its Artifacts tab
    opened on that file: ``.../runs/<run>/artifacts/previews/epoch_002.png?...``."""
    path = f"experiments/{experiment_id}/runs/{run_id}"
    if artifact is not None:
        path += "/artifacts" + (f"/{urllib.parse.quote(artifact)}" if artifact else "")
    return _ui_url(tracking_uri, path, dict(TRAINING_LAYOUT))


def _ui_url(tracking_uri: str, route: str, query: dict[str, str]) -> str:
    base = redact_url(tracking_uri).rstrip("/")
    return f"{base}/#/{route}?{urllib.parse.urlencode(query)}"


def _column(kind: str, key: str) -> str:
    """The UI's canonical column key: ``params.`loss.lambda_sg```."""
    return f"{kind}.`{key}`"


#: A column of the runs table: (``params`` | ``metrics`` | ``tags``, key).
Column = tuple[str, str]


def runs_view_state(
    columns: Sequence[Column],
    order_by: str,
    ascending: bool,
    widths: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A shared view of a runs table (JSON for ``SHARED_VIEW_TAG_PREFIX + key``): the
    ``columns`` in that order (each once), rows ordered by metric ``order_by``. A column
    is as wide as its name asks (:func:`_column_width`) unless ``widths`` (by key) says."""
    names = {_column(kind, key): key for kind, key in columns}
    shown = list(names)
    given = dict(widths or {})
    return {
        "orderByKey": _column("metrics", order_by),
        "orderByAsc": ascending,
        "selectedColumns": shown,
        "columnOrder": shown,
        "columnWidths": {c: given.get(name, _column_width(name)) for c, name in names.items()},
    }


def sweep_view_state(
    searched: Sequence[str], metrics: Sequence[str], order_by: str, ascending: bool
) -> dict[str, Any]:
    """The shared view of a sweep's runs table (JSON for ``SHARED_VIEW_TAG_PREFIX + key``):
    columns ``searched`` params then ``metrics``, rows ordered by metric ``order_by``
    (``ascending`` for a minimised objective), which also lists the trials flat."""
    columns = [("params", p) for p in searched] + [("metrics", m) for m in metrics]
    return runs_view_state(columns, order_by, ascending)


def _column_width(name: str) -> int:
    """Pixels for a column headed ``name`` (13 px font, sort icon and padding) holding a
    float."""
    return min(MAX_COLUMN_PX, max(MIN_COLUMN_PX, 7 * len(name) + 40))


#: A card of the Chart tab: (section title, metric keys drawn). One key: its value per run
#: as bars (a metric logged once, such as ``optuna.value``) or a line per run over the
#: steps; several keys: one line each per run, on one chart. The UI titles a card by its
#: keys (``train/total_loss vs val/total_loss``): a title given in the view is not shown.
ChartCard = tuple[str, Sequence[str]]


def _uuid(prefix: str, name: str) -> str:
    """A stable id for a section or card of the view (the UI only compares them)."""
    return f"salsweep-{prefix}-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def charts_view_state(cards: Sequence[ChartCard], *, bars: Sequence[str] = ()) -> dict[str, Any]:
    """The Chart tab's part of a shared view: the ``cards`` first, in their sections, in
    the given order (the sections in order of first use); every other metric gets the
    UI's own card after them. A card whose one metric is in ``bars`` is a bar chart (a
    value per run, e.g. ``optuna.value``), any other a line chart over the steps."""
    sections: dict[str, str] = {}
    charts: list[dict[str, Any]] = []
    for section, keys in cards:
        section_id = sections.setdefault(section, _uuid("section", section))
        common = {
            "uuid": _uuid("chart", " ".join(keys)),
            "runsCountToCompare": 10,
            "metricSectionId": section_id,
            "deleted": False,
            "isGenerated": False,
            "metricKey": keys[0],
        }
        if len(keys) == 1 and keys[0] in bars:
            charts.append({**common, "type": "BAR"})
            continue
        charts.append(
            {
                **common,
                "type": "LINE",
                "selectedMetricKeys": list(keys),
                "lineSmoothness": 0,
                "xAxisScaleType": "linear",
                "scaleType": "linear",
                "range": {},
                "xAxisKey": "step",
                "selectedXAxisMetricKey": "",
                "yAxisKey": "metric",
                "yAxisExpressions": [],
                "ignoreOutliers": False,
                "useGlobalXaxisKey": True,
                "useGlobalLineSmoothing": True,
            }
        )
    return {
        "compareRunSections": [
            {
                "uuid": uuid,
                "name": name,
                "display": True,
                "isReordered": True,
                "deleted": False,
                "isGenerated": False,
            }
            for name, uuid in sections.items()
        ],
        "compareRunCharts": charts,
        "isAccordionReordered": True,
    }

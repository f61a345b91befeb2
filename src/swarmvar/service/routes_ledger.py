"""Routes of the ledger (entries, proofs, signed head, verification), the variants
(list; promote and roll back for admins), health and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from ..errors import InvalidParameter, LedgerFailed, LedgerUnreachable, LedgerUnwritable
from ..ledger import Ledger
from .auth import Admin, Reader
from .desk import Desk
from .metrics import CONTENT_TYPE
from .responses import error
from .schemas import EntryOut, Health, VariantOut, VerificationOut
from .strict import StrictRoute

router = APIRouter(route_class=StrictRoute)
log = logging.getLogger("swarmvar.service")
#: An admin's change of a variant: its own errors.
#: (the 503 and 500 of the variant store are derived for every variants route:
#: service/responses.py)
_VARIANT_WRITE: dict[int | str, dict[str, object]] = {404: error("Unknown variant")}
_MAX_PAGE = 1000
VariantId = Annotated[str, Path(min_length=1, max_length=128, description="Variant id")]


def _desk(request: Request) -> Desk:
    desk: Desk = request.app.state.desk
    return desk


def _ledger(request: Request) -> Ledger:
    return _desk(request).ledger


def _in_range(what: str, value: int, size: int) -> None:
    if not 0 <= value < size:
        raise InvalidParameter(f"{what} {value} is outside the ledger (0..{size - 1})")


@router.get("/v1/ledger/entries", response_model=list[EntryOut], tags=["ledger"])
def entries(request: Request, key: Reader,
            start: Annotated[int, Query(ge=0)] = 0,
            limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 100) -> list[dict[str, Any]]:
    """Ledger entries ``start .. start + limit - 1`` (hashes as hex)."""
    led = _ledger(request)
    return [e.to_dict() for e in led.entries(start, min(start + limit, led.size))]


@router.get("/v1/ledger/entries/{index}", response_model=EntryOut, tags=["ledger"])
def entry(index: int, request: Request, key: Reader) -> dict[str, Any]:
    """One entry by index (negative counts from the end)."""
    led = _ledger(request)
    size = led.size
    if not -size <= index < size:
        raise InvalidParameter(f"entry {index} is outside the ledger: give 0..{size - 1}, or "
                               f"-1..-{size} to count from the end")
    return led.entry(index).to_dict()


#: The head of a damaged ledger (its 503s - a ledger that cannot be read now, or whose disk
#: is full, read-only or failing - are every reader route's: :mod:`swarmvar.service.responses`).
_STORAGE: dict[int | str, dict[str, object]] = {
    500: error("The ledger is damaged (LedgerCorrupted): nothing is signed over it")}


@router.get("/v1/ledger/head", tags=["ledger"], responses=_STORAGE)
def head(request: Request, key: Reader) -> dict[str, Any]:
    """The signed tree head: size, Merkle root, timestamp, Ed25519 public key and signature."""
    return _ledger(request).signed_head().to_dict()


@router.get("/v1/ledger/proofs/inclusion", tags=["ledger"])
def inclusion(request: Request, index: Annotated[int, Query(ge=0)],
              key: Reader,
              size: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """RFC 6962 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
    led = _ledger(request)
    n = led.size if size is None else size
    if n > led.size:
        raise InvalidParameter(f"size {n} is beyond the ledger's {led.size} entries")
    _in_range("index", index, n)
    return led.inclusion_proof(index, n).to_dict()


@router.get("/v1/ledger/proofs/consistency", tags=["ledger"])
def consistency(request: Request, first: Annotated[int, Query(ge=1)],
                key: Reader,
                second: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """RFC 6962 consistency proof between the trees of ``first`` and ``second`` entries."""
    led = _ledger(request)
    n = led.size if second is None else second
    if not first <= n <= led.size:
        raise InvalidParameter(f"need 1 <= first <= second <= {led.size}, got {first}, {n}")
    return led.consistency_proof(first, n).to_dict()


@router.post("/v1/ledger/verify", response_model=VerificationOut, tags=["ledger"])
def verify(request: Request, key: Reader) -> VerificationOut:
    """Recompute every hash and the Merkle root; say where the chain breaks, if it does."""
    v = _ledger(request).verify_chain(processes=1)
    if v.ok:
        request.app.state.metrics.ledger_verified.set(time.time())
    return VerificationOut(ok=v.ok, size=v.size, first_bad=v.first_bad, reason=v.reason,
                           root=None if v.root is None else v.root.hex())


# --- variants -----------------------------------------------------------------


@contextmanager
def _evolution(request: Request) -> Iterator[Any]:
    from ..evolution import open_home

    cfg = request.app.state.config
    # with --db the variants live in PostgreSQL (shared); state packs under the home
    # made at the server's start (create_app's lifespan): opened, never made again, so a
    # home deleted since answers VariantStoreMissing instead of [] from a new empty store
    made = getattr(request.app.state, "evolution_made", False)
    home = (open_home(cfg.db, state_root=cfg.home / "states") if cfg.db
            else open_home(cfg.home, create=not made))
    try:
        yield home
    finally:
        home.close()


def _variant(v: Any) -> VariantOut:
    return VariantOut(id=v.id, agent_class=v.agent_class, status=v.status.value,
                      version=v.version, parameters=dict(v.parameters),
                      description=v.description)


@router.get("/v1/variants", response_model=list[VariantOut], tags=["variants"])
def list_variants(request: Request, key: Reader) -> list[VariantOut]:
    """Every model variant with its lifecycle status, oldest first."""
    with _evolution(request) as h:
        return [_variant(v) for v in h.variants.list()]


@router.post("/v1/variants/{variant_id}/promote", response_model=VariantOut, tags=["variants"],
             responses=_VARIANT_WRITE)
def promote(variant_id: VariantId, request: Request, key: Admin) -> VariantOut:
    """Make a variant the active one of its class (admins); recorded in the ledger.

    The ledger note (``variant.promote``) is written inside the variant store's
    transaction: a note that cannot be written (the ledger's disk full, say) rolls the
    promotion back, so a promotion stands only with its note in the ledger. A COMMIT of the
    variant store that fails after the note leaves the variant as it was: the note is then
    voided by a ``variant.promote.void`` entry naming it (its index and hash) and the
    store's error, and the answer is that error; a COMMIT whose answer was lost although
    the store holds the promotion answers it made (200, a warning logged); one that lost
    the PostgreSQL server mid-way answers a 503 saying it may have been made (look at the
    variant's status). The desk's lock is taken first, the order
    an ingest takes it in before it checkpoints into the same store, so neither waits on
    the other's database lock."""
    def change(h: Any) -> tuple[Any, Any, dict[str, Any]]:
        v = h.variants.promote(h.variants.get(variant_id), now=time.time())
        return v, v, {"variant": v.id, "agent_class": v.agent_class}

    return _variant(_noted_change(request, key, "promote", variant_id, change))


@router.post("/v1/variants/{variant_id}/rollback", response_model=VariantOut,
             tags=["variants"], responses=_VARIANT_WRITE)
def rollback(variant_id: VariantId, request: Request, key: Admin) -> VariantOut:
    """Roll a canary or active variant back (admins); its predecessor returns. As with
    a promotion, the ledger note (``variant.rollback``) is written inside the variant
    store's transaction, and voided (``variant.rollback.void``) if its COMMIT fails."""
    def change(h: Any) -> tuple[Any, Any, dict[str, Any]]:
        rolled, back = h.variants.roll_back(h.variants.get(variant_id), now=time.time())
        return rolled, rolled, {"variant": rolled.id,
                                "reinstated": None if back is None else back.id}

    return _variant(_noted_change(request, key, "rollback", variant_id, change))


def _noted_change(request: Request, key: Any, action: str, variant_id: str,
                  change: Callable[[Any], tuple[Any, Any, dict[str, Any]]]) -> Any:
    """Make ``change`` in the variant store and note it (``variant.<action>``) inside one
    transaction of the store; return what ``change`` returned first.

    ``change(home)`` returns (result, the variant as it wrote it, the note's details). A
    note whose change the store did not keep is voided (``variant.<action>.void``, with
    the key and request id); the rule, and what is answered when it is not known:
    :func:`swarmvar.evolution.noted.noted_change` (warnings and errors logged on
    ``swarmvar.service``).

    Raises
    ------
    SwarmVarError
        The change's, the note's or the COMMIT's error (nothing changed in the store; a
        ``VariantStoreUnreachable`` saying so when it may have been).
    """
    from ..evolution.noted import noted_change, variant_held

    desk = _desk(request)
    who = {"key_id": key.id, "request_id": request.state.request_id}
    with desk._lock, _evolution(request) as h:  # the desk's order
        url = request.app.state.config.db or ""
        return noted_change(
            h.db.transaction, lambda: change(h), _DeskNotes(desk, action, who),
            variant_held(h.variants.get), lambda level, line: log.log(level, "%s", line),
            f"{'promotion' if action == 'promote' else 'rollback'} of {variant_id}", str(url))


class _DeskNotes:
    """The desk's ledger for a variant change's note (``variant.<action>``) and its void
    (``variant.<action>.void``: the note's index and hash, the action, the variant, the
    store's error, the admin key and the request id). Under the desk's lock (the
    caller's)."""

    def __init__(self, desk: Desk, action: str, who: dict[str, Any]) -> None:
        self._desk, self._action, self._who = desk, action, who

    def note(self, data: dict[str, Any]) -> int:
        return self._desk.note(f"variant.{self._action}", {**data, **self._who})

    def landed(self, data: dict[str, Any]) -> int | None:
        return self._desk.landed_note(f"variant.{self._action}", {**data, **self._who})

    def void(self, index: int, data: dict[str, Any], error: str) -> int:
        voided = self._desk.ledger.entry(index)
        return self._desk.note(f"variant.{self._action}.void", {
            "voids": {"index": index, "hash": voided.hash.hex()}, "action": self._action,
            "variant": data.get("variant"), "error": error, **self._who})


# --- operations ---------------------------------------------------------------


@router.get("/healthz", response_model=Health, tags=["operations"])
def healthz() -> Health:
    """Liveness: the process serves requests."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["operations"],
            responses={503: {"model": Health}})
def readyz(request: Request, response: Response) -> Health:
    """Readiness: the ledger answers. Not ready: 503, its detail the error's class and a
    fixed category (a PostgreSQL server out of reach: ``LedgerUnreachable (connection
    refused)``), never the error's text (this route asks no key; the log has it)."""
    # logged once per change of state (an orchestrator probes every few seconds): the first
    # failure, and each whose detail differs from the last, at WARNING with the error's
    # text; the same failure again at DEBUG; ready again after a failure at INFO. The last
    # detail is this process's (app.state.readyz_failing: each worker logs its own).
    state = request.app.state
    last: str | None = getattr(state, "readyz_failing", None)
    try:
        size = _ledger(request).size
    except Exception as exc:  # any storage failure means: not ready
        response.status_code = 503
        detail = not_ready(exc)
        state.readyz_failing = detail
        log.log(logging.DEBUG if detail == last else logging.WARNING, "not ready",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})
        return Health(status="unavailable", detail=detail)
    if last is not None:
        state.readyz_failing = None
        log.info("ready again", extra={"fields": {"was": last}})
    return Health(status="ok", detail=f"ledger has {size} entries")


def not_ready(exc: BaseException) -> str:
    """``/readyz``'s detail for ``exc``: its class name, with the fixed category of a
    PostgreSQL ledger's error (its ``detail``: a category and the SQLSTATE) or a disk's
    cause (``disk full``, ...); never its message, which may name a path or an address."""
    kind = type(exc).__name__
    if isinstance(exc, LedgerUnwritable):
        return f"{kind} ({exc.cause})"
    if isinstance(exc, (LedgerUnreachable, LedgerFailed)) and exc.detail:
        return f"{kind} ({exc.detail})"
    return kind


@router.get("/metrics", tags=["operations"], response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text exposition (all worker processes in multiprocess mode)."""
    m = request.app.state.metrics
    m.ledger_entries.set(_desk(request).ledger_size)
    return Response(m.exposition(), media_type=CONTENT_TYPE)

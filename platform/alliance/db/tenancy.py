"""Tenant isolation, enforced in one place: the session.

A session opened for a tenant (`tenant_session`) adds `tenant_id = <that tenant>` to every ORM statement it
runs against a TenantScoped model, stamps new rows with the tenant, and refuses to flush a row of another
tenant. Code running in such a session cannot see or move another tenant's rows, whatever it queries. A row two
tenants share (SharedByTwoTenants: a conversion belongs to its source brand and its target brand) is seen by
either of the two and by no one else.
The ledger's SQL functions take the tenant id explicitly; `scoped_tenant_id(session)` is the only source
of it, so it too is the caller's tenant."""

from __future__ import annotations

from sqlalchemy import BigInteger, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

_TENANT = "alliance.tenant_id"


class TenantScoped:
    """Mixin for tenant-owned tables: the tenant id leads the primary key (ready to distribute by tenant)."""

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class SharedByTwoTenants:
    """Mixin for rows two tenants share: `tenant_id` owns the row and leads its key; the model maps
    `counterparty_tenant_id` to its column naming the other party. A session scoped to either sees the row; a
    session scoped to any other tenant does not."""

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class CrossTenantWrite(RuntimeError):
    pass


def scope_to_tenant(session: AsyncSession, tenant_id: int) -> AsyncSession:
    session.sync_session.info[_TENANT] = tenant_id
    return session


def scoped_tenant_id(session: AsyncSession) -> int:
    try:
        return session.sync_session.info[_TENANT]
    except KeyError:
        raise RuntimeError("this session is not scoped to a tenant") from None


@event.listens_for(Session, "do_orm_execute")
def _filter_by_tenant(state: ORMExecuteState) -> None:
    tenant_id = state.session.info.get(_TENANT)
    if tenant_id is not None and (state.is_select or state.is_update or state.is_delete):
        state.statement = state.statement.options(
            with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True),
            *(with_loader_criteria(shared, (shared.tenant_id == tenant_id) | (shared.counterparty_tenant_id == tenant_id),
                                   include_aliases=True)
              for shared in SharedByTwoTenants.__subclasses__()),
        )


@event.listens_for(Session, "before_flush")
def _stamp_and_check_tenant(session: Session, *_: object) -> None:
    tenant_id = session.info.get(_TENANT)
    if tenant_id is None:
        return
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, TenantScoped):
            if row.tenant_id is None and row in session.new:
                row.tenant_id = tenant_id
            elif row.tenant_id != tenant_id:
                raise CrossTenantWrite(f"{type(row).__name__} of tenant {row.tenant_id} in a session of {tenant_id}")
        elif isinstance(row, SharedByTwoTenants) and tenant_id not in (row.tenant_id, row.counterparty_tenant_id):
            raise CrossTenantWrite(f"{type(row).__name__} of tenants {row.tenant_id} and "
                                   f"{row.counterparty_tenant_id} in a session of {tenant_id}")


async def in_tenant_transaction(sessions, tenant_id: int | None, work):
    """The request boundary for brand calls: one transaction, scoped to the caller's tenant (None: the
    operator, unscoped), committed before returning, re-run on transient failures."""
    from alliance.db.transaction import run_in_transaction

    async def scoped(session: AsyncSession):
        if tenant_id is not None:
            scope_to_tenant(session, tenant_id)
        return await work(session)

    return await run_in_transaction(sessions, scoped)

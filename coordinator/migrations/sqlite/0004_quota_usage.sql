-- What each tenant holds, kept beside its limits and changed in the transaction that writes or
-- removes an instance: a claim's quota check is one conditional UPDATE, not a SUM over the
-- tenant's instances. A tenant without a row holds nothing and has no limits.
ALTER TABLE tenant_quotas ADD COLUMN used_cores BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_quotas ADD COLUMN used_memory_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenant_quotas ADD COLUMN used_instances BIGINT NOT NULL DEFAULT 0;

INSERT INTO tenant_quotas (tenant_id)
    SELECT DISTINCT tenant_id FROM instances
    WHERE tenant_id NOT IN (SELECT tenant_id FROM tenant_quotas);

UPDATE tenant_quotas SET
    used_cores = (SELECT COALESCE(SUM(vcpus), 0) FROM instances i
                  WHERE i.tenant_id = tenant_quotas.tenant_id),
    used_memory_bytes = (SELECT COALESCE(SUM(memory_bytes), 0) FROM instances i
                         WHERE i.tenant_id = tenant_quotas.tenant_id),
    used_instances = (SELECT COUNT(*) FROM instances i
                      WHERE i.tenant_id = tenant_quotas.tenant_id);

-- No longer summed: a plain index for listing a tenant's instances.
DROP INDEX instances_tenant;
CREATE INDEX instances_tenant ON instances (tenant_id);

-- Identities of the CIs with id :lo .. :hi (one transaction), in the
-- normalized form cmdb.identity_normalize gives: hosts an fqdn and a
-- machine uuid, interfaces a mac, addresses an ip, services an endpoint,
-- subnets a cidr.
INSERT INTO cmdb.ci_identity (ci_id, kind, value)
SELECT c.id, v.kind, v.value
FROM cmdb.ci c
CROSS JOIN LATERAL (VALUES
    ('fqdn', CASE WHEN c.type = 'host' THEN c.name || '.example.com' END),
    ('uuid', CASE WHEN c.type = 'host' THEN md5(c.name)::uuid::text END),
    ('mac', CASE WHEN c.type = 'network_interface'
                 THEN regexp_replace(lpad(to_hex(c.id), 12, '0'), '(..)(?!$)', '\1:', 'g') END),
    ('ip', CASE WHEN c.type = 'ip_address' THEN c.name END),
    ('endpoint', CASE WHEN c.type = 'service' THEN c.name || '.example.com/tcp/' || (c.attributes ->> 'port') END),
    ('cidr', CASE WHEN c.type = 'subnet' THEN c.name END)) v(kind, value)
WHERE c.id BETWEEN :lo AND :hi AND v.value IS NOT NULL
ORDER BY c.id, v.kind;

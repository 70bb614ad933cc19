-- One batch of CIs, g = :lo .. :hi (one transaction). Types are interleaved
-- in blocks of 200 as discovery would write them (a host, its interfaces,
-- addresses and services, now and then an application), so ids are not
-- clustered by type:
--   0-39 host, 40-79 network_interface, 80-129 ip_address, 130-179 service,
--   180-195 application, 196-197 software, 198 subnet, 199 business_service.
-- Attribute values come from hashint8(g): deterministic, realistic mixes
-- (hosts: os linux 70%, windows 25%, bsd 5%).
INSERT INTO cmdb.ci (type, name, description, status, criticality, owner, attributes)
SELECT x.type,
       CASE x.type
         WHEN 'host' THEN 'host-' || lpad(g::text, 7, '0')
         WHEN 'network_interface' THEN 'if-' || lpad(g::text, 7, '0')
         WHEN 'ip_address' THEN '10.' || (g >> 16 & 255) || '.' || (g >> 8 & 255) || '.' || (g & 255)
         WHEN 'service' THEN 'svc-' || lpad(g::text, 7, '0')
         WHEN 'application' THEN 'app-' || lpad(g::text, 7, '0')
         WHEN 'software' THEN 'sw-' || lpad(g::text, 7, '0')
         WHEN 'subnet' THEN '100.' || (g / 200 >> 8 & 255) || '.' || (g / 200 & 255) || '.0/24'
         ELSE 'bs-' || lpad(g::text, 7, '0') END,
       CASE x.type
         WHEN 'host' THEN 'virtual server'
         WHEN 'network_interface' THEN 'ethernet interface'
         WHEN 'ip_address' THEN 'IPv4 address'
         WHEN 'service' THEN 'listening TCP endpoint'
         WHEN 'application' THEN 'in-house application'
         WHEN 'software' THEN 'installed software product'
         WHEN 'subnet' THEN 'IPv4 /24 network'
         ELSE 'business service' END,
       CASE WHEN h % 100 < 5 THEN 'planned' WHEN h % 100 < 8 THEN 'maintenance' ELSE 'live' END,
       (ARRAY['low', 'medium', 'high', 'critical'])[1 + (h / 100) % 4],
       'team-' || (h / 1000) % 50,
       CASE x.type
         WHEN 'host' THEN jsonb_build_object(
           'os', CASE WHEN h % 100 < 70 THEN 'linux' WHEN h % 100 < 95 THEN 'windows' ELSE 'bsd' END,
           'os_version', CASE WHEN h % 100 < 70 THEN (ARRAY['debian 12', 'debian 11', 'ubuntu 22.04', 'rhel 9'])[1 + (h / 7) % 4]
                              WHEN h % 100 < 95 THEN (ARRAY['server 2019', 'server 2022'])[1 + (h / 7) % 2]
                              ELSE (ARRAY['freebsd 14', 'openbsd 7.5'])[1 + (h / 7) % 2] END,
           'env', CASE WHEN (h / 11) % 10 < 6 THEN 'prod' WHEN (h / 11) % 10 < 8 THEN 'staging' ELSE 'dev' END,
           'datacenter', 'dc' || (1 + (h / 13) % 4),
           'cpus', 2 << ((h / 17) % 5)::int,
           'memory_gb', 4 << ((h / 19) % 6)::int,
           'virtual', (h / 23) % 5 > 0)
         WHEN 'network_interface' THEN jsonb_build_object('ifname', 'eth' || (h % 2), 'speed_mbps', (ARRAY[1000, 10000, 25000])[1 + h % 3])
         WHEN 'ip_address' THEN jsonb_build_object('version', 4, 'prefix_len', 24)
         WHEN 'service' THEN jsonb_build_object('proto', 'tcp', 'port', (ARRAY[22, 80, 443, 5432, 3306, 8080, 6379, 9100])[1 + h % 8])
         WHEN 'application' THEN jsonb_build_object('version', (h % 5) || '.' || (h / 5) % 20, 'language', (ARRAY['java', 'go', 'python', 'c'])[1 + (h / 100) % 4])
         WHEN 'software' THEN jsonb_build_object('vendor', (ARRAY['acme', 'initech', 'globex'])[1 + h % 3], 'version', (h % 9) || '.' || (h / 9) % 9)
         WHEN 'subnet' THEN jsonb_build_object('vlan', 100 + h % 3000)
         ELSE jsonb_build_object('sla', (ARRAY['gold', 'silver', 'bronze'])[1 + h % 3]) END
FROM generate_series(:lo::bigint, :hi::bigint) g
CROSS JOIN LATERAL (SELECT abs(hashint8(g)::bigint) AS h) r
CROSS JOIN LATERAL (SELECT CASE WHEN g % 200 < 40 THEN 'host' WHEN g % 200 < 80 THEN 'network_interface'
                                WHEN g % 200 < 130 THEN 'ip_address' WHEN g % 200 < 180 THEN 'service'
                                WHEN g % 200 < 196 THEN 'application' WHEN g % 200 < 198 THEN 'software'
                                WHEN g % 200 = 198 THEN 'subnet' ELSE 'business_service' END AS type) x
ORDER BY g;

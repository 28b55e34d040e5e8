-- The MAC of the instance NIC that carries a bound EIP (NULL while unbound): recorded with the
-- binding, so the NIC keeps it on every host the instance runs on, and never given twice.
ALTER TABLE eips ADD COLUMN mac TEXT;
CREATE UNIQUE INDEX eips_mac ON eips (mac);
-- The host's NICs as its agent reports them (a JSON array of names): the host serves the
-- external segments on these.
ALTER TABLE hosts ADD COLUMN nics TEXT NOT NULL DEFAULT '[]';

-- Finding the same person (a new lead joins the team's lead of the same phone or
-- email, docs/leads.md) looked at every contact: these make it an index lookup, so a
-- new lead costs the same with 1k or 100k contacts (postgres; keep in step with the other
-- backend). The email index is on lower(email) because that is what the lookup
-- compares.
CREATE INDEX contacts_phone ON contacts (phone);
CREATE INDEX contacts_email_lower ON contacts (lower(email));

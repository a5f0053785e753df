"""The workspace's state: database schema and access, the workspace folder, the audit chain, accounts."""

"""The core domain: customers, interactions, audit, storage and their schemas."""

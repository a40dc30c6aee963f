"""The staff side of the core: workflow, access policy, audit, invitations, statistics."""

"""Live lists: project, member, document and job changes pushed to each member's browser."""

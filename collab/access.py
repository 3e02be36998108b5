"""Re-export of :mod:`auth.access` (roles live with authentication)."""

from auth.access import DocumentAccess as DocumentAccess
from auth.access import NotVisibleError as NotVisibleError
from auth.access import Role as Role
from auth.access import RoleTooLowError as RoleTooLowError
from auth.access import current_user as current_user
from auth.access import document_access as document_access
from auth.access import project_role as project_role
from auth.access import require_document_role as require_document_role
from auth.access import require_project_role as require_project_role
from auth.access import require_request_document as require_request_document

from core import roles as role_helpers


def roles(request):
    """Expose the signed-in user's main role to every template as ``role``."""
    role = role_helpers.primary_role(getattr(request, "user", None))
    return {"role": role.value if role else None}

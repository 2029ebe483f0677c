"""OpenAPI schema generation: component names that stay unique across views."""
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.openapi import AutoSchema


class ViewScopedNames(AutoSchema):
    """Name a view's nested `InputSerializer`/`OutputSerializer` after the view.

    The HackSoft pattern nests `InputSerializer` in each API view; without this every one of them
    would be called "Input" in the schema and clash.
    """

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__
        if name in ("Input", "Output") and "." in qualname:
            return qualname.rsplit(".", 2)[-2].removesuffix("Api").removesuffix("View") + name
        return name


class ThrottledBasicScheme(BasicScheme):
    """HTTP Basic with the login throttle in front is still plain HTTP Basic to a client."""

    target_class = "config.login_throttle.ThrottledBasicAuthentication"

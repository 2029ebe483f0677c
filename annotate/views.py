from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors


@login_required
def home(request):
    collections = selectors.collections_visible_to(request.user)
    return render(request, "annotate/home.html", {"collections": collections})

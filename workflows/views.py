"""The par board page: server-rendered from workflows.par.board, refreshed every 30 s."""

from __future__ import annotations

from django.shortcuts import render

from web.access import CLINICAL, role_required
from workflows import par


@role_required(*CLINICAL)
def par_board(request):
    return render(request, "workflows/par_board.html", {"levels": par.board()})

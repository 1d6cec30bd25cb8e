from django.shortcuts import render

from portal.access import resource_view


@resource_view(instructor=False)
def student(request, membership):
    return render(request, "portal/student.html", {"membership": membership, "resource": membership.resource})


@resource_view(instructor=True)
def instructor(request, membership):
    return render(request, "portal/instructor.html", {"membership": membership, "resource": membership.resource})

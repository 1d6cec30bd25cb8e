"""The production static files storage: hashed names for the application's own files (nginx
caches them for a year), plain names for the exam-content origin's files under content/.

Exams and MathJax address those files by fixed paths (`/mathjax/2/MathJax.js`, the runtime's
`frame.js`), which hashing cannot rewrite; hashing thousands of MathJax files would also double
what collectstatic writes on every deploy. nginx revalidates them instead (see
nginx/nginx.conf.template, the content server).
"""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage

from content.assets import PREFIX


class AppManifestStaticFilesStorage(ManifestStaticFilesStorage):
    def post_process(self, paths, dry_run=False, **options):
        own = {path: found for path, found in paths.items() if not path.startswith(PREFIX)}
        yield from super().post_process(own, dry_run=dry_run, **options)

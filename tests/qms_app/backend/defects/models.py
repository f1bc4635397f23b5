from django.db import models


class Defect(models.Model):
    SEVERITIES = [("minor", "Minor"), ("major", "Major"), ("critical", "Critical")]
    STATUSES = [("open", "Open"), ("closed", "Closed")]

    title = models.CharField(max_length=200)
    part_number = models.CharField(max_length=50, blank=True)
    severity = models.CharField(max_length=10, choices=SEVERITIES, default="minor")
    status = models.CharField(max_length=10, choices=STATUSES, default="open")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.title

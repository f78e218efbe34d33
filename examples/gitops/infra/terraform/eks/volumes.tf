# EBS volumes created outside Kubernetes (pre-CSI days and CI).

# Monthly finance reports export. The reports job moved to S3 in 2023.
resource "aws_ebs_volume" "legacy_reports" {
  availability_zone = "us-east-1a"
  size              = 500
  type              = "gp2"

  tags = {
    Name = "legacy-reports"
    Team = "finance"
  }
}

# Jenkins build cache, from before the move to GitHub Actions.
// TODO(platform): confirm nothing mounts it any more.
resource "aws_ebs_volume" "old_jenkins_cache" {
  availability_zone = "us-east-1b"
  size              = 200
  type              = "gp3"
  iops              = 3000
  throughput        = 125

  tags = merge(local.tags, {
    Name = "old-jenkins-cache"
  })
}

resource "aws_ebs_volume" "grafana_data" {
  availability_zone = "us-east-1a"
  size  = 50
  type  = "gp3"
  tags  = { Name = "grafana-data", Team = "platform" }
}

resource "aws_volume_attachment" "grafana_data" {
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.grafana_data.id
  instance_id = "i-0123456789abcdef0"
}

/* Imported in 2022 (terraform import); keeps its AWS id as a tag. */
resource "aws_ebs_volume" "es_snapshots_2022" {
  availability_zone = "us-east-1c"
  size              = 1000
  type              = "st1"

  tags = {
    Name                   = "elasticsearch-snapshots-2022"
    "finops.dev/volume-id" = "vol-0b7c6d5e4f3a2b101"
  }
}

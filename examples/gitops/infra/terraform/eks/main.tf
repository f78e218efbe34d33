/*
 * Production EKS cluster.
 * Node groups: "general" (managed, sizes in locals below), "batch" (managed,
 * sizes in variables.tf) and "spot" (raw aws_eks_node_group in nodegroups.tf).
 */

locals {
  general_min_size     = 3
  general_max_size     = 10
  general_desired_size = 4   // the cluster autoscaler moves it between min and max

  tags = {
    Team = "platform"
  }
}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.8"

  cluster_name    = var.cluster_name
  cluster_version = "1.29"

  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids

  eks_managed_node_group_defaults = {
    ami_type = "AL2_x86_64"
    disk_size = 50
  }

  eks_managed_node_groups = {
    # Everything that is not batch or spot.
    general = {
      min_size     = local.general_min_size
      max_size     = local.general_max_size
      desired_size = local.general_desired_size

      instance_types = ["m5.xlarge"]
      capacity_type  = "ON_DEMAND"
      labels = {
        "node.example.com/pool" = "general"
      }
    }

    batch = {
      min_size       = var.batch_min_size
      max_size       = var.batch_max_size
      desired_size   = var.batch_desired_size
      instance_types = ["c5.2xlarge"]
      taints = {
        batch = { key = "batch", value = "true", effect = "NO_SCHEDULE" }
      }
    }
  }

  tags = local.tags
}

# Lets the cluster autoscaler resize the node groups' Auto Scaling groups.
resource "aws_iam_policy" "cluster_autoscaler" {
  name        = "${var.cluster_name}-cluster-autoscaler"
  description = "Cluster autoscaler for ${var.cluster_name}"
  policy      = <<-EOT
    {
      "Version": "2012-10-17",
      "Statement": [
        {
          "Effect": "Allow",
          "Action": [
            "autoscaling:SetDesiredCapacity",
            "autoscaling:TerminateInstanceInAutoScalingGroup"
          ],
          "Resource": "*",
          "Condition": {
            "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}": "owned"}
          }
        }
      ]
    }
  EOT
}

# Spot capacity for stateless, interruption-tolerant workloads.
resource "aws_eks_node_group" "spot" {
  cluster_name    = module.eks.cluster_name
  node_group_name = "spot"
  node_role_arn   = aws_iam_role.spot_nodes.arn
  subnet_ids      = var.private_subnet_ids
  capacity_type   = "SPOT"
  instance_types  = ["m5.large", "m5a.large", "m4.large"]

  scaling_config {
    desired_size = 4
    min_size     = 2
    max_size     = 12   # raised for the 2024 sale
  }

  update_config {
    max_unavailable = 1
  }

  labels = {
    "node.example.com/pool" = "spot"
  }
}

resource "aws_iam_role" "spot_nodes" {
  name               = "${var.cluster_name}-spot-nodes"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

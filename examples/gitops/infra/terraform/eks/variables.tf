variable "region" {
  description = "AWS region of the cluster"
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  type    = string
  default = "prod-eks"
}

variable "vpc_id" {
  type    = string
  default = "vpc-0a1b2c3d4e5f60718"
}

variable "private_subnet_ids" {
  type    = list(string)
  default = ["subnet-0aa11bb22cc33dd44", "subnet-0ee55ff66aa77bb88", "subnet-0cc99dd00ee11ff22"]
}

# Batch node group sizing (nightly Spark jobs).
variable "batch_min_size" {
  type    = number
  default = 1
}

variable "batch_max_size" {
  type    = number
  default = 8
}

variable "batch_desired_size" {
  description = "Initial size only: the eks module ignores later changes"
  type        = number
  default     = 3
}

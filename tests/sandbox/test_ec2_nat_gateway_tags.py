"""DescribeTags reports NAT gateways as resource type 'natgateway', as AWS does."""

from __future__ import annotations


def test_nat_gateway_tags_have_the_aws_resource_type(aws):
    ec2 = aws("ec2", "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.66.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.66.0.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(
        SubnetId=subnet,
        AllocationId=allocation,
        TagSpecifications=[{"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": "probe-nat"}]}],
    )["NatGateway"]["NatGatewayId"]
    try:
        tags = ec2.describe_tags(
            Filters=[{"Name": "resource-id", "Values": [nat]}, {"Name": "resource-type", "Values": ["natgateway"]}]
        )["Tags"]
        assert tags == [{"Key": "Name", "ResourceId": nat, "ResourceType": "natgateway", "Value": "probe-nat"}]
    finally:
        ec2.delete_nat_gateway(NatGatewayId=nat)
        ec2.release_address(AllocationId=allocation)
        ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)

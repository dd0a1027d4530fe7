// Command xds-probe asks an istiod, over plain-text ADS (port 15010), for the endpoints of one
// Envoy cluster as a sidecar of a given network and cluster would, and prints what istiod
// answered as JSON: split-horizon EDS is computed per proxy, so no debug page of istiod shows it.
//
//	xds-probe -addr 10.244.1.5:15010 -network net-a -cluster cluster01 \
//	  -resource 'outbound|80||echo.demo.svc.cluster.local'
//
// Output: {"cluster": ..., "endpoints": [{"address": "...", "port": 15443, "weight": 1}]}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

const edsType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

type result struct {
	Cluster   string       `json:"cluster"`
	Endpoints []lbEndpoint `json:"endpoints"`
}

type lbEndpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	Weight  uint32 `json:"weight"`
}

func main() {
	addr := flag.String("addr", "", "istiod plain-text xDS address, host:port")
	network := flag.String("network", "", "the proxy's network (topology.istio.io/network)")
	clusterID := flag.String("cluster", "", "the proxy's cluster ID")
	resource := flag.String("resource", "", "Envoy cluster name, outbound|<port>||<host>")
	ip := flag.String("ip", "10.255.255.1", "the proxy's IP (any address outside the meshes)")
	namespace := flag.String("namespace", "default", "the proxy's namespace")
	timeout := flag.Duration("timeout", 20*time.Second, "how long to wait for an answer")
	flag.Parse()
	if *addr == "" || *resource == "" {
		fmt.Fprintln(os.Stderr, "usage: xds-probe -addr HOST:PORT -resource NAME [-network N] [-cluster C]")
		os.Exit(2)
	}
	out, err := probe(*addr, *network, *clusterID, *resource, *ip, *namespace, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xds-probe:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func probe(addr, network, clusterID, resource, ip, namespace string, timeout time.Duration) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	meta, err := structpb.NewStruct(map[string]any{
		// istiod treats versions below its own as old proxies; the highest version is a current one.
		"ISTIO_VERSION": "65536.65536.65536",
		"NETWORK":       network,
		"CLUSTER_ID":    clusterID,
		"NAMESPACE":     namespace,
		"LABELS":        map[string]any{"app": "xds-probe"},
	})
	if err != nil {
		return nil, err
	}
	node := &core.Node{Id: fmt.Sprintf("sidecar~%s~xds-probe.%s~%s.svc.cluster.local", ip, namespace, namespace), Metadata: meta}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: edsType, ResourceNames: []string{resource}}); err != nil {
		return nil, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("no EDS answer for %s: %w", resource, err)
		}
		if resp.GetTypeUrl() != edsType {
			continue
		}
		for _, res := range resp.GetResources() {
			cla := &endpoint.ClusterLoadAssignment{}
			if err := res.UnmarshalTo(cla); err != nil {
				return nil, err
			}
			if cla.GetClusterName() != resource {
				continue
			}
			out := &result{Cluster: resource, Endpoints: []lbEndpoint{}}
			for _, loc := range cla.GetEndpoints() {
				for _, lb := range loc.GetLbEndpoints() {
					sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
					if sa == nil {
						continue
					}
					out.Endpoints = append(out.Endpoints, lbEndpoint{Address: sa.GetAddress(), Port: sa.GetPortValue(),
						Weight: lb.GetLoadBalancingWeight().GetValue()})
				}
			}
			return out, nil
		}
	}
}

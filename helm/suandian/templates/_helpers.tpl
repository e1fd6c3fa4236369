{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "suandian.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: release-chart, or the release alone when it already contains the chart name. */}}
{{- define "suandian.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "suandian.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "suandian.labels" -}}
helm.sh/chart: {{ include "suandian.chart" . }}
{{ include "suandian.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: suandian
{{- end }}

{{/* Labels that select the operator pods (never change them: Deployment selectors are immutable). */}}
{{- define "suandian.selectorLabels" -}}
app.kubernetes.io/name: {{ include "suandian.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "suandian.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "suandian.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "suandian.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Name of the webhook Service, also the DNS name in its certificate. */}}
{{- define "suandian.webhookService" -}}
{{- printf "%s-webhook" (include "suandian.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Secret holding the webhook's serving certificate. */}}
{{- define "suandian.webhookSecret" -}}
{{- if .Values.webhook.certManager.enabled }}
{{- printf "%s-webhook-tls" (include "suandian.fullname" .) }}
{{- else }}
{{- required "webhook.tls.secretName is required when webhook.certManager.enabled is false" .Values.webhook.tls.secretName }}
{{- end }}
{{- end }}

{{/* True when the operator serves all namespaces. */}}
{{- define "suandian.clusterwide" -}}
{{- if not .Values.operator.watchNamespaces }}true{{ end }}
{{- end }}

{{/* Karmada mode splits the install in two releases of this chart (docs/karmada.md): the
control-plane part, installed into the Karmada API server (CRDs, ServiceAccount, RBAC,
PowerSites, peering: what the operator reads and writes there; the Karmada API server
runs no Pods), and the operator part, installed where Karmada's own controllers run,
with operator.karmada.kubeconfigSecret naming the Secret of a kubeconfig for the Karmada
API server (the Deployment and its metrics Service). True when this release runs Pods. */}}
{{- define "suandian.runsPods" -}}
{{- if or (ne .Values.operator.mode "karmada") .Values.operator.karmada.kubeconfigSecret }}true{{ end }}
{{- end }}

{{/* True when this release writes into the API server the operator acts on. */}}
{{- define "suandian.actsHere" -}}
{{- if or (ne .Values.operator.mode "karmada") (not .Values.operator.karmada.kubeconfigSecret) }}true{{ end }}
{{- end }}

{{/* The gated-Pod webhook: not in Karmada mode (Pods are not made in the Karmada API server). */}}
{{- define "suandian.webhook" -}}
{{- if and .Values.webhook.enabled (ne .Values.operator.mode "karmada") }}true{{ end }}
{{- end }}

{{/* True for the control-plane part of a Karmada-mode install (see suandian.runsPods). */}}
{{- define "suandian.karmadaControlPlane" -}}
{{- if and (eq .Values.operator.mode "karmada") (not .Values.operator.karmada.kubeconfigSecret) }}true{{ end }}
{{- end }}
